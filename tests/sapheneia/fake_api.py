"""A stand-in for the v2 API's forecast route, for the client's unit tests (no server, no Ray).

It reads the request as the server does (multipart: a Parquet 'file' and a 'request' JSON part),
answers each series' ``horizon`` rows in the server's order (ids sorted as text), and can refuse
requests of more than ``max_series`` series with the server's 413 ``limit_exceeded``. The served
tests check the client against the real service.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from typing import Any

import httpx
import pandas as pd


def multipart(request: httpx.Request) -> dict[str, bytes]:
    """The parts of a multipart body, by name."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + request.content)
    return {
        str(part.get_param("name", header="content-disposition")): part.get_payload(decode=True)
        for part in message.iter_parts()  # type: ignore[attr-defined]
    }


def upload(request: httpx.Request) -> tuple[dict[str, Any], pd.DataFrame]:
    """The request JSON and the uploaded table."""
    parts = multipart(request)
    return json.loads(parts["request"]), pd.read_parquet(io.BytesIO(parts["file"]))


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "request_id": "req-1"}}
    return httpx.Response(status, json=body, headers={"x-request-id": "req-1", **headers})


@dataclass
class FakeForecastAPI:
    """``POST /api/v2/forecast``: the mean of series ``s`` at step ``k`` is its last target + k."""

    max_series: int | None = None
    requests: list[tuple[dict[str, Any], pd.DataFrame]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v2/forecast"
        fields, table = upload(request)
        self.requests.append((fields, table))
        id_col, target = fields["id_column"], fields["target_column"]
        series = sorted(table[id_col].astype(str).unique())
        if self.max_series is not None and len(series) > self.max_series:
            return error(
                413, "limit_exceeded", f"{len(series)} series; the cap is {self.max_series}"
            )
        rows = []
        for sid in series:
            history = table[(table[id_col].astype(str) == sid) & table[target].notna()]
            last = pd.Timestamp(history[fields["timestamp_column"]].max())
            for step in range(1, fields["horizon"] + 1):
                mean = float(history[target].iloc[-1]) + step
                rows.append(
                    {
                        id_col: sid,
                        "ds": (last + pd.DateOffset(days=step)).isoformat(),
                        "mean": mean,
                        "median": mean,
                    }
                )
        return httpx.Response(
            200, json={"model": fields["model"], "forecast": rows, "metadata": {}}
        )


def daily(series: dict[str, float], days: int = 10) -> pd.DataFrame:
    """Long-format daily series, each a ramp from its start value."""
    return pd.DataFrame(
        [
            {"unique_id": sid, "ds": pd.Timestamp("2024-01-01") + pd.Timedelta(days=d), "y": v + d}
            for sid, v in series.items()
            for d in range(days)
        ]
    )
