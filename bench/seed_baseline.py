"""3. The earlier architecture, as a baseline: one FastAPI process under uvicorn (one worker) that
loads the model once and answers one request at a time behind a lock, with the same adapter and
the same JSON body and response as ``POST /api/v2/forecast``.

    python -m bench.seed_baseline --checkpoint DIR --port 8123
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from fastapi import FastAPI, Request, Response

from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.models.base import ModelAdapter
from sapheneia.tasks import ForecastResult


def create_app(adapter: ModelAdapter) -> FastAPI:
    app = FastAPI()
    lock = asyncio.Lock()
    limits = DataLimits(data_dir=Path(tempfile.gettempdir()))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"models": {adapter.name: {"status": "ready"}}}

    @app.post("/api/v2/forecast")
    async def forecast(request: Request) -> Response:
        started = time.perf_counter()
        body = json.loads(await request.body())
        frame = load_table(body["data"], limits)
        tasks = build_tasks(frame, ColumnRoles(), body["horizon"], tuple(body["quantiles"]))
        async with lock:  # the earlier product ran one model call at a time
            results = await asyncio.to_thread(adapter.forecast, tasks)
        done = [r for r in results if isinstance(r, ForecastResult)]
        table = pd.concat([r.to_frame() for r in done], ignore_index=True)
        table["ds"] = table["ds"].map(lambda t: t.isoformat())
        payload = {
            "model": adapter.name,
            "forecast": table.to_dict(orient="records"),
            "metadata": {
                "batch_sizes": [len(tasks)] * len(done),
                "total_time_seconds": round(time.perf_counter() - started, 4),
            },
        }
        return Response(json.dumps(payload), media_type="application/json")

    return app


class SeedServer:
    """The baseline in its own process (like the earlier product), stopped on ``close``."""

    def __init__(self, checkpoint: Path, port: int) -> None:
        command = [sys.executable, "-m", "bench.seed_baseline", "--checkpoint", str(checkpoint)]
        self.process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the seed baseline server exited while starting")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.close()
        raise TimeoutError("the seed baseline server did not start within 300 s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def main() -> None:
    import uvicorn

    from bench.ceiling import adapter_2p5

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args()
    app = create_app(adapter_2p5(args.checkpoint))
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, log_level="warning")


if __name__ == "__main__":
    main()
