"""The API's error codes as exceptions, derived from ``sapheneia.errors`` so they cannot drift.

For every server class (``ModelNotFound``, ``DataError``, ...) there is a client class of the same
name that is both a ``SapheneiaAPIError`` (status, code, message, request id of the answer) and the
server class itself: ``except sapheneia.errors.DataError`` catches the local library's error and the
remote API's alike, and the client classes keep the server's families (``UnknownColumn`` is a
``DataError`` is an ``InvalidInput``).
"""

from __future__ import annotations

import inspect
from typing import Any

from sapheneia import errors as server


class SapheneiaAPIError(server.SapheneiaError):
    """An error answer from the API: ``{"error": {"code", "message", "request_id"}}``."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after_s = retry_after_s  # type: ignore[assignment]

    def __str__(self) -> str:
        quoted = f", request {self.request_id}" if self.request_id else ""
        return f"{self.status} {self.code}: {self.message}{quoted}"


class InternalError(SapheneiaAPIError):
    """500 ``internal_error``: a server fault; quote ``request_id`` to the operator."""

    status = server.SapheneiaError.status
    code = server.SapheneiaError.code


def _mirror() -> dict[str, type[SapheneiaAPIError]]:
    """One client class per class in ``sapheneia.errors``, parents before children."""
    mirrored: dict[type[server.SapheneiaError], type[SapheneiaAPIError]] = {
        server.SapheneiaError: SapheneiaAPIError
    }
    declared = [
        cls
        for _, cls in inspect.getmembers(server, inspect.isclass)
        if issubclass(cls, server.SapheneiaError) and cls.__module__ == server.__name__
    ]
    for cls in sorted(declared, key=lambda c: len(c.__mro__)):
        if cls in mirrored:
            continue
        parent = mirrored[cls.__bases__[0]]
        # Set here, not inherited: the client parent comes first in the MRO and has its own code.
        namespace: dict[str, Any] = {
            "__module__": __name__,
            "__doc__": cls.__doc__,
            "status": cls.status,
            "code": cls.code,
        }
        mirrored[cls] = type(cls.__name__, (parent, cls), namespace)
    del mirrored[server.SapheneiaError]  # its code, internal_error, is InternalError's
    classes: list[type[SapheneiaAPIError]] = [InternalError, *mirrored.values()]
    return {cls.code: cls for cls in classes}


#: Error code -> exception class, for every code the API answers with.
ERROR_CLASSES = _mirror()
globals().update({cls.__name__: cls for cls in ERROR_CLASSES.values()})


def api_error(
    status: int,
    body: Any,
    *,
    request_id: str | None = None,
    retry_after_s: float | None = None,
) -> SapheneiaAPIError:
    """The exception for an error answer. A body without the error shape (a proxy's plain-text
    503) still gives one, with code ``http_<status>`` and the text as message."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = error["code"]
        message = str(error.get("message", ""))
        request_id = error.get("request_id") or request_id
    else:
        code = f"http_{status}"
        message = body if isinstance(body, str) else str(body)
    cls = ERROR_CLASSES.get(code, SapheneiaAPIError)
    return cls(
        message[:2000], status=status, code=code, request_id=request_id, retry_after_s=retry_after_s
    )
