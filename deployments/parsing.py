"""One way to read a table request, for ``/api/v2/forecast`` and ``/api/v2/backtest`` alike.

JSON: the request model with inline ``data`` rows or a ``source`` (path or URL). Multipart: a
``file`` part (CSV, Parquet or JSON) and a ``request`` part holding the same JSON without
``data``/``source``. Either way the body is capped before it is parsed, validation problems are one
400 ``invalid_input``, and the table is loaded off the event loop.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

import pandas as pd
from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from deployments.deps import read_body
from deployments.schemas import UPLOAD_SOURCE, TableRequest, parse_body
from deployments.sources import SourceLoader
from sapheneia.errors import InvalidInput, UnsupportedFormat

Body = TypeVar("Body", bound=TableRequest)
Form = TypeVar("Form", bound=BaseModel)

BodyFormat = Literal["json", "multipart"]
#: Each body format: the Content-Type that announces it, and how a refusal names it.
BODY_FORMATS: dict[BodyFormat, tuple[str, str]] = {
    "json": ("application/json", "application/json"),
    "multipart": (
        "multipart/form-data",
        "multipart/form-data with a 'file' and a 'request' part",
    ),
}


def body_format(
    request: Request, accepted: tuple[BodyFormat, ...] = ("json", "multipart")
) -> BodyFormat:
    """Which of ``accepted`` the body is, by its Content-Type; any other type is one 400
    ``unsupported_format`` naming what the route takes, the same on every route with a body."""
    content_type = request.headers.get("content-type", "")
    for kind in accepted:
        if content_type.startswith(BODY_FORMATS[kind][0]):
            return kind
    takes = " or ".join(BODY_FORMATS[kind][1] for kind in accepted)
    raise UnsupportedFormat(f"unsupported content type '{content_type or 'none'}': send {takes}")


async def json_only(request: Request) -> None:
    """For routes whose body FastAPI validates as JSON (v1): a body of another type is refused as
    the table routes refuse it. A route whose body may be left out takes a bare request."""
    if await request.body():
        body_format(request, ("json",))


#: A route parameter (after the caller's, so a refused key is answered first) for ``json_only``.
JsonOnly = Annotated[None, Depends(json_only)]


async def parse_table_request(
    request: Request, model: type[Body], sources: SourceLoader
) -> tuple[Body, pd.DataFrame]:
    """The validated request and its table."""
    limits = sources.limits
    key = request.state.caller.key_digest
    if body_format(request) == "json":
        body = parse_body(model, await read_body(request, limits.max_bytes))
        source: Any = body.data if body.data is not None else body.source
        return body, await sources.load(source, key)
    await read_body(request, limits.max_bytes)  # the cap holds before the form is parsed
    body, upload = await read_upload_form(request, model)
    content = await upload.read()
    return body, await sources.load(content, key, filename=upload.filename or "upload.csv")


async def read_upload_form(request: Request, model: type[Form]) -> tuple[Form, UploadFile]:
    """A multipart body's 'request' part validated into ``model`` (its rows are the 'file'
    part, so ``source`` is set to the upload) and the 'file' part itself. The caller has capped
    the body before the form is parsed."""
    form = await request.form()
    upload, spec = form.get("file"), form.get("request")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("multipart upload needs a 'file' part (CSV or Parquet)")
    if not isinstance(spec, str):
        raise InvalidInput("multipart upload needs a 'request' part: the request JSON")
    try:
        fields = json.loads(spec)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"'request' part is not valid JSON ({error.msg})") from error
    if not isinstance(fields, dict):
        raise InvalidInput("'request' part must be a JSON object")
    if "data" in fields or "source" in fields:
        raise InvalidInput(
            "with a multipart upload the rows are the 'file' part: leave 'data' and 'source' "
            "out of the 'request' part"
        )
    body = parse_body(model, json.dumps({**fields, "source": UPLOAD_SOURCE}).encode())
    return body, upload


def upload_doc(schema: str, example: dict[str, Any], part_example: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes JSON or a multipart upload."""
    return {
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{schema}"},
                    "example": example,
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "request"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "request": {
                                "type": "string",
                                "description": f"{schema} as JSON, without 'data'/'source'.",
                                "example": part_example,
                            },
                        },
                    }
                },
            },
            "required": True,
        }
    }
