"""The UI's only way to the service: HTTP calls with the user's key, errors as readable messages.

The UI is a client like any other, so it works the same against a local or a remote cluster.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, BinaryIO

import httpx

DEFAULT_API_BASE_URL = "http://127.0.0.1:8000"
# The API's job ids are ``job-<hex>``; anything else never becomes part of a URL path.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
DOWNLOAD_CHUNK = 1 << 20


class ApiError(Exception):
    """A call that did not succeed, with a message fit to show to the user."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status}{f', {self.code}' if self.code else ''})")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return " ".join(parts)


class MissingKey(ApiError):
    """No key (the sign-in has ended): raised before any request is made."""


HINTS = {
    401: "The API did not accept the key (revoked?): reload the page and sign in again.",
    403: "This key may not do that.",
    404: "The API has no such route or model; the server may be older than this UI.",
    413: "The data is too large for one request; send fewer rows or series, or run it as a job.",
    429: "Too many requests with this key; wait a minute and try again.",
}


def error_from_response(response: httpx.Response, what: str) -> ApiError:
    """The API's ``{"error": {"code", "message", "request_id"}}`` body as an ApiError."""
    status = response.status_code
    try:
        body = response.json()
        error = body["error"] if isinstance(body, dict) else None
    except (json.JSONDecodeError, ValueError, KeyError):
        error = None
    if isinstance(error, dict):
        message = str(error.get("message") or "no message")
        hint = HINTS.get(status)
        text = f"{what} failed: {message}" + (f" {hint}" if hint else "")
        return ApiError(
            text,
            status=status,
            code=error.get("code"),
            request_id=error.get("request_id") or response.headers.get("x-request-id"),
        )
    # Not the API's error shape (a proxy, a timeout page): never echo the body, it may be HTML.
    hint = HINTS.get(status, "The server did not answer with an API error; is the URL right?")
    return ApiError(f"{what} failed. {hint}", status=status)


class ApiClient:
    """Calls to one Sapheneia API with one key; every method raises ApiError on failure."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        key = (api_key or "").strip()
        if not key:
            raise MissingKey("Sign in with your API key first: reload the page.")
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def _unreachable(self, what: str, error: httpx.HTTPError) -> ApiError:
        if isinstance(error, httpx.TimeoutException):
            return ApiError(f"{what} timed out: the API at {self.base_url} did not answer.")
        return ApiError(
            f"{what} failed: cannot reach the API at {self.base_url} ({type(error).__name__})."
        )

    def _call(self, what: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise self._unreachable(what, error) from error
        if response.status_code >= 400:
            raise error_from_response(response, what)
        try:
            body = response.json()
        except ValueError as error:
            raise ApiError(f"{what}: the API answered something that is not JSON.") from error
        if not isinstance(body, dict):
            raise ApiError(f"{what}: unexpected answer from the API.")
        return body

    def models(self) -> list[dict[str, Any]]:
        """``GET /api/v2/models``: one entry per model with ``id``, ``status`` and ``reason``."""
        return list(self._call("Listing models", "GET", "/api/v2/models").get("models", []))

    def forecast(self, request: dict[str, Any], file_name: str, content: bytes) -> dict[str, Any]:
        """``POST /api/v2/forecast`` as a multipart upload of the table plus the request JSON."""
        return self._call(
            f"Forecast with {request.get('model')}",
            "POST",
            "/api/v2/forecast",
            files={"file": (file_name, content)},
            data={"request": json.dumps(request)},
        )

    def backtest(self, request: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/v2/backtest`` with the rows inline."""
        return self._call("Backtest", "POST", "/api/v2/backtest", json=request)

    def anomalies(self, request: dict[str, Any], file_name: str, content: bytes) -> dict[str, Any]:
        """``POST /api/v2/anomalies`` as a multipart upload of the table plus the request JSON."""
        return self._call(
            f"Anomalies with {request.get('model')}",
            "POST",
            "/api/v2/anomalies",
            files={"file": (file_name, content)},
            data={"request": json.dumps(request)},
        )

    def submit_job(
        self, request: dict[str, Any], upload: tuple[str, BinaryIO] | None = None
    ) -> dict[str, Any]:
        """``POST /api/v2/jobs``: JSON naming a ``source``, or a multipart upload whose file is
        streamed from ``upload`` (name, open file), never read whole into memory."""
        if upload is None:
            return self._call("Submitting the job", "POST", "/api/v2/jobs", json=request)
        return self._call(
            "Submitting the job",
            "POST",
            "/api/v2/jobs",
            files={"file": upload},
            data={"request": json.dumps(request)},
        )

    def jobs(self) -> list[dict[str, Any]]:
        """``GET /api/v2/jobs``: this key's jobs, newest first."""
        return list(self._call("Listing jobs", "GET", "/api/v2/jobs").get("jobs", []))

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /api/v2/jobs/{id}``: status, progress, timings, error."""
        return self._call("Reading the job", "GET", job_path(job_id))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """``DELETE /api/v2/jobs/{id}``; a finished job stays as it is."""
        return self._call("Cancelling the job", "DELETE", job_path(job_id))

    def download_result(self, job_id: str, file_format: str, destination: Path) -> int:
        """``GET /api/v2/jobs/{id}/result`` streamed into ``destination``; the bytes written."""
        what = "Downloading the result"
        written = 0
        try:
            with self._client.stream(
                "GET", f"{job_path(job_id)}/result", params={"format": file_format}
            ) as response:
                if response.status_code >= 400:
                    response.read()  # an error body is small
                    raise error_from_response(response, what)
                with destination.open("wb") as sink:
                    for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                        written += sink.write(chunk)
        except httpx.HTTPError as error:
            destination.unlink(missing_ok=True)
            raise self._unreachable(what, error) from error
        return written


def job_path(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id or ""):
        raise ApiError("Pick a job from the list first.", code="invalid_job_id")
    return f"/api/v2/jobs/{job_id}"
