"""Target 2: large requests. 10,000 series of seasonal-naive served against statsforecast's own
``StatsForecast(...).forecast`` on the same frame with the replica's CPUs (one: ``n_jobs=1``, and
the replica's ``num_cpus: 1``); and 100,000 series uploaded as Parquet, within the size cap, with
the ingress replica's peak memory.

    python -m bench.large [--quick] [--only ten|hundred]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa

from bench.common import API_KEY, ServeInstance, table
from bench.ingress import REQUEST_HEADER, ingress_pid

HORIZON = 14
QUANTILES = [0.1, 0.5, 0.9]  # level 80 for statsforecast
SEASON = 7


def panel(n_series: int, length: int, seed: int = 0) -> pd.DataFrame:
    """Daily random walks, long format, each series' rows together."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2022-01-01", periods=length, freq="D")
    width = len(str(n_series))
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:0{width}d}" for i in range(n_series)], length),
            "ds": np.tile(days, n_series),
            "y": (100 + rng.normal(size=(n_series, length)).cumsum(axis=1)).reshape(-1),
        }
    )


def arrow_bytes(frame: pd.DataFrame, dictionary_ids: bool = False) -> bytes:
    data = pa.Table.from_pandas(frame, preserve_index=False)
    if dictionary_ids:  # each id once: what keeps 100,000 series under the body cap
        ids = data.column("unique_id").dictionary_encode()
        data = data.set_column(0, "unique_id", ids)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return bytes(sink.getvalue().to_pybytes())


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def library_seconds(frame: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    started = time.perf_counter()
    model = StatsForecast(models=[SeasonalNaive(season_length=SEASON)], freq="D", n_jobs=1)
    out = model.forecast(h=HORIZON, df=frame, level=[80])
    return time.perf_counter() - started, out


def served_forecast(url: str, body: bytes, fields: dict[str, Any]) -> tuple[float, pd.DataFrame]:
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/vnd.apache.arrow.stream",
        REQUEST_HEADER: json.dumps({**fields, "format": "arrow"}),
    }
    started = time.perf_counter()
    response = httpx.post(f"{url}/api/v2/forecast", content=body, headers=headers, timeout=900)
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds, pa.ipc.open_stream(response.content).read_all().to_pandas()


class PeakMemory:
    """The peak resident memory of a process, sampled every 20 ms while in the ``with`` block."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def deploy(instance: ServeInstance, replicas: int, timeout_s: float) -> None:
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.5}},
        "models": [
            {
                "id": "seasonal-naive",
                "num_replicas": replicas,
                "ray_actor_options": {"num_cpus": 1},
                "user_config": {"max_batch_size": 64, "batch_wait_timeout_s": 0.0},
            }
        ],
    }
    instance.deploy(args, request_timeout_s=timeout_s)


def ten_thousand(instance: ServeInstance, length: int, rounds: int) -> list[str]:
    """Served and library, in alternating rounds; their medians and ratio, and that they agree."""
    frame = panel(10_000, length)
    body = arrow_bytes(frame)
    fields = {"model": "seasonal-naive", "horizon": HORIZON, "quantiles": QUANTILES}
    served, library = [], []
    for _ in range(rounds):
        seconds, answer = served_forecast(instance.url, body, fields)
        served.append(seconds)
        seconds, reference = library_seconds(frame)
        library.append(seconds)
        print(f"served {served[-1]:.2f} s, library {library[-1]:.2f} s", flush=True)
    merged = answer.merge(reference, on=["unique_id", "ds"])
    gap = float(np.abs(merged["mean"] - merged["SeasonalNaive"]).max())
    gap = max(gap, float(np.abs(merged["q-0.1"] - merged["SeasonalNaive-lo-80"]).max()))
    ratio = statistics.median(library) / statistics.median(served)
    rows = [
        [
            "served (Arrow body and answer, HTTP)",
            statistics.median(served),
            10_000 / statistics.median(served),
        ],
        [
            "StatsForecast(...).forecast, n_jobs=1",
            statistics.median(library),
            10_000 / statistics.median(library),
        ],
    ]
    return [
        f"10,000 daily series of {length} points, horizon {HORIZON}, level 80 (quantiles 0.1, "
        f"0.5, 0.9); {rounds} alternating rounds, medians. Served: one seasonal-naive replica "
        "with num_cpus 1 and max_batch_size 64.",
        "",
        table(["path", "seconds", "series/s"], rows),
        "",
        f"- served / library speed: {ratio:.2f} (target >= 0.5: {'met' if ratio >= 0.5 else 'not met'})",
        f"- largest difference between served and library values (mean, 10 % quantile): {gap:.3g}",
    ]


def hundred_thousand(instance: ServeInstance, length: int) -> list[str]:
    """A Parquet upload of 100,000 series (multipart, as the Python client sends it) and the
    ingress replica's peak memory while it is answered (JSON), and again with Arrow in and out."""
    frame = panel(100_000, length)
    content = parquet_bytes(frame)
    arrow = arrow_bytes(frame, dictionary_ids=True)
    fields = {"model": "seasonal-naive", "horizon": 7, "quantiles": QUANTILES}
    pid = ingress_pid()
    rows = []
    auth = {"Authorization": f"Bearer {API_KEY}"}
    cases: list[tuple[str, int, dict[str, Any]]] = [
        (
            "multipart Parquet upload, JSON answer",
            len(content),
            {
                "files": {"file": ("series.parquet", content, "application/vnd.apache.parquet")},
                "data": {"request": json.dumps(fields)},
                "headers": auth,
            },
        ),
        (
            "Arrow body, Arrow answer",
            len(arrow),
            {
                "content": arrow,
                "headers": {
                    **auth,
                    "Content-Type": "application/vnd.apache.arrow.stream",
                    REQUEST_HEADER: json.dumps({**fields, "format": "arrow"}),
                },
            },
        ),
    ]
    for name, size, request in cases:
        with PeakMemory(pid) as memory:
            started = time.perf_counter()
            response = httpx.post(f"{instance.url}/api/v2/forecast", timeout=1800, **request)
            seconds = time.perf_counter() - started
        ok = response.status_code == 200
        rows.append(
            [
                name,
                f"{size / 2**20:.1f}",
                response.status_code,
                seconds,
                memory.start / 2**20,
                memory.peak / 2**20,
                f"{len(response.content) / 2**20:.0f}",
            ]
        )
        print(rows[-1], flush=True)
        if not ok:
            print(response.text[:500], flush=True)
    return [
        f"100,000 daily series of {length} points ({len(frame):,} rows), horizon 7, under the "
        "default caps: 20 MiB of body and of decoded table (8 bytes a value, plus the id text: "
        "this is about as many points as 100,000 series can carry), 2,000,000 rows, 100,000 "
        "series; SAPHENEIA_REQUEST_TIMEOUT_S raised to 900 s and two seasonal-naive replicas, "
        "since the model alone takes minutes on 2 cores. Ids dictionary-encoded in the Arrow body.",
        "",
        table(
            [
                "request",
                "body MiB",
                "status",
                "seconds",
                "ingress RSS before MiB",
                "ingress RSS peak MiB",
                "answer MiB",
            ],
            rows,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["ten", "hundred"])
    args = parser.parse_args()
    lines = ["## Large requests (target 2)", ""]
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "data").mkdir()
        instance = ServeInstance(root / "data", root / "state")
        try:
            if args.only in (None, "ten"):
                deploy(instance, replicas=1, timeout_s=900)
                lines += ten_thousand(instance, 28 if args.quick else 56, 1 if args.quick else 3)
                lines.append("")
            if args.only in (None, "hundred"):
                deploy(instance, replicas=2, timeout_s=900)
                lines += hundred_thousand(instance, 6)
        finally:
            instance.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
