"""One way to read a table request, for ``/api/v2/forecast`` and ``/api/v2/backtest`` alike.

JSON: the request model with inline ``data`` rows or a ``source`` (path or URL). Multipart: a
``file`` part (CSV, Parquet or JSON) and a ``request`` part holding the same JSON without
``data``/``source``. Either way the body is capped before it is parsed, validation problems are one
400 ``invalid_input``, and the table is loaded off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal, TypeVar

import orjson
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

# A table sent as the body itself, by its content type; the request's fields are in a header.
TABLE_BODIES = {
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "text/csv": "csv",
}
REQUEST_HEADER = "X-Sapheneia-Request"

# A run of digits long enough for an integer orjson cannot hold (in a string it only costs speed),
# found by mapping every digit to '0' and the rest to ' ': a regex backtracks on every number.
DIGITS = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(" ") for i in range(256))
LONG_NUMBER = b"0" * 19
# JSON bodies up to this size are parsed on the event loop: a thread hop costs more.
INLINE_BYTES = 64 * 1024

BodyFormat = Literal["json", "multipart", "table"]
#: Each body format: the Content-Types that announce it, and how a refusal names it.
BODY_FORMATS: dict[BodyFormat, tuple[tuple[str, ...], str]] = {
    "json": (("application/json",), "application/json"),
    "multipart": (
        ("multipart/form-data",),
        "multipart/form-data with a 'file' and a 'request' part",
    ),
    "table": (
        tuple(TABLE_BODIES),
        f"the table itself as {', '.join(TABLE_BODIES)} with the request's fields in the "
        f"{REQUEST_HEADER} header",
    ),
}


def body_format(
    request: Request, accepted: tuple[BodyFormat, ...] = ("json", "multipart", "table")
) -> BodyFormat:
    """Which of ``accepted`` the body is, by its Content-Type; any other type is one 400
    ``unsupported_format`` naming what the route takes, the same on every route with a body."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    for kind in accepted:
        if media_type in BODY_FORMATS[kind][0]:
            return kind
    takes = ", or ".join(BODY_FORMATS[kind][1] for kind in accepted)
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
    kind = body_format(request)
    if kind == "json":
        raw = await read_body(request, limits.max_bytes)
        # Rows of a large body take milliseconds to parse: off the event loop.
        body = (
            parse_table_body(model, raw)
            if len(raw) < INLINE_BYTES
            else await asyncio.to_thread(parse_table_body, model, raw)
        )
        source: Any = body.data if body.data is not None else body.source
        return body, await sources.load(source, key)
    if kind == "multipart":
        await read_body(request, limits.max_bytes)  # the cap holds before the form is parsed
        body, upload = await read_upload_form(request, model)
        content = await upload.read()
        return body, await sources.load(content, key, filename=upload.filename or "upload.csv")
    # The table is the body itself (no multipart framing, no spooling to disk); the request's
    # other fields come in a header.
    content_type = request.headers.get("content-type", "")
    suffix = TABLE_BODIES[content_type.split(";")[0].strip().lower()]
    spec = request.headers.get(REQUEST_HEADER)
    if spec is None:
        raise InvalidInput(
            f"a table sent as the body ({content_type}) needs the request's fields as JSON "
            f'in the {REQUEST_HEADER} header, for example {{"model": "auto-ets", '
            '"horizon": 12}'
        )
    body = request_fields(model, spec, f"{REQUEST_HEADER} header", "the table as the body")
    content = await read_body(request, limits.max_bytes)
    return body, await sources.load(content, key, filename=f"body.{suffix}")


def parse_table_body(model: type[Body], raw: bytes) -> Body:
    """``parse_body`` for a table request, with its rows parsed by orjson and left as the parsed
    dicts: pydantic checks the other fields, from the same JSON without the rows. Anything but a
    JSON object whose ``data`` is a list of objects (or JSON orjson refuses: NaN, huge integers)
    goes through ``parse_body`` whole, so every message stays pydantic's."""
    if LONG_NUMBER in raw.translate(DIGITS):
        # orjson reads integers past 64 bits as floats (an id 123...890 would become 1.23e+29);
        # pydantic keeps them whole.
        return parse_body(model, raw)
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return parse_body(model, raw)
    rows = fields.get("data") if isinstance(fields, dict) else None
    if not isinstance(rows, list) or set(map(type, rows)) - {dict}:
        return parse_body(model, raw)
    body = parse_body(model, orjson.dumps({**fields, "data": []}))
    body.data = rows
    return body


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
    upload_rows = "a multipart upload the rows are the 'file' part"
    return request_fields(model, spec, "'request' part", upload_rows), upload


def request_fields(model: type[Form], spec: str, where: str, table: str) -> Form:
    """The request's fields sent beside an uploaded table, validated into ``model`` with
    ``source`` set to the upload. ``where`` names what carried them (the multipart part, the
    header), ``table`` how the rows came."""
    try:
        fields = json.loads(spec)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{where} is not valid JSON ({error.msg})") from error
    if not isinstance(fields, dict):
        raise InvalidInput(f"{where} must be a JSON object")
    if "data" in fields or "source" in fields:
        raise InvalidInput(f"with {table}: leave 'data' and 'source' out of the {where}")
    return parse_body(model, json.dumps({**fields, "source": UPLOAD_SOURCE}).encode())


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
