"""The audit log: one JSON line per request, for the operator's log pipeline.

Each line says who (the key's short id, never the key), what (method, route, model, series count),
the answer's status and how long it took. Written to stdout (the replica's log, collected by Ray)
or appended to a file.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fastapi import Request


class AuditLog:
    def __init__(self, target: str) -> None:
        """``target``: "" (off), "stdout", or a file path (appended to)."""
        self.enabled = bool(target)
        self._lock = threading.Lock()
        self._stream: IO[str] | None = None
        if target == "stdout":
            self._stream = sys.stdout
        elif target:
            path = Path(target).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = path.open("a", buffering=1, encoding="utf-8")  # one line, one write

    def record(self, request: Request, status: int, started: float) -> None:
        if self._stream is None:
            return
        caller = getattr(request.state, "caller", None)
        route = request.scope.get("route")
        line: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": getattr(request.state, "request_id", None),
            "key_id": caller.key_id if caller is not None else None,
            "method": request.method,
            "route": getattr(route, "path", request.url.path),
            "model": getattr(request.state, "audit_model", None),
            "series": getattr(request.state, "audit_series", None),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        text = json.dumps(line, separators=(",", ":"))
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


def note(request: Request, *, model: str | None = None, series: int | None = None) -> None:
    """What a route tells the audit log about its request."""
    if model is not None:
        request.state.audit_model = model
    if series is not None:
        request.state.audit_series = series
