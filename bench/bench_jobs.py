"""A large seasonal-naive job through ``sapheneia batch``: wall time and peak memory.

    PYTHONPATH=$PWD .venv/bin/python -m bench.bench_jobs --series 100000
    PYTHONPATH=$PWD .venv/bin/python -m bench.bench_jobs --series 1000000 --write

Writes the input (``--length`` daily points per series, shuffled within row groups) as Parquet one
row group at a time, runs the CLI in a subprocess on a fresh local Ray instance, and samples the
resident memory of that process tree (driver, Ray's own processes, workers) every half second.
With ``--write`` the figures go to bench/RESULTS.md under "Jobs".
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SERIES_PER_GROUP = 20_000


def write_input(path: Path, series: int, length: int) -> None:
    """Daily series with a weekly season; never more than one row group in memory."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2023-01-01", periods=length, freq="D").to_numpy()
    season = np.sin(np.arange(length) * 2 * np.pi / 7)
    writer: pq.ParquetWriter | None = None
    for start in range(0, series, SERIES_PER_GROUP):
        count = min(SERIES_PER_GROUP, series - start)
        ids = np.repeat(np.char.add("s", np.arange(start, start + count).astype(str)), length)
        y = 10 + np.tile(season, count) + rng.normal(scale=0.3, size=count * length)
        table = pa.table({"unique_id": ids, "ds": np.tile(days, count), "y": y})
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run(series: int, length: int, horizon: int, workdir: Path) -> dict[str, float]:
    source = workdir / "input.parquet"
    started = time.perf_counter()
    write_input(source, series, length)
    written = time.perf_counter() - started
    out = workdir / "out"
    command = [
        sys.executable,
        "-m",
        "sapheneia.cli",
        "batch",
        str(source),
        "--model",
        "seasonal-naive",
        "--horizon",
        str(horizon),
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    log = (workdir / "batch.log").open("wb")  # a file, not a pipe: the progress bar never blocks
    process = psutil.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
    peak = driver = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process))
        with contextlib.suppress(psutil.Error):
            driver = max(driver, process.memory_info().rss)
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if process.returncode != 0:
        errors = (workdir / "batch.log").read_text()[-3000:]
        raise SystemExit(f"batch failed ({process.returncode}): {output} {errors}")
    rows = sum(pq.read_metadata(p).num_rows for p in out.glob("part-*.parquet"))
    return {
        "series": series,
        "input_rows": series * length,
        "output_rows": rows,
        "write_input_s": round(written, 1),
        "job_s": round(elapsed, 1),
        "series_per_s": round(series / elapsed),
        "peak_tree_rss_mib": round(peak / 2**20),
        "peak_driver_rss_mib": round(driver / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=28)
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as workdir:
        figures = run(args.series, args.length, args.horizon, Path(workdir))
    print(figures)
    if args.write:
        cores = psutil.cpu_count()
        line = " | ".join(str(v) for v in figures.values())
        header = " | ".join(figures)
        text = RESULTS.read_text() if RESULTS.exists() else ""
        if "\n## Jobs\n" not in text:
            text += (
                "\n## Jobs\n\n`bench/bench_jobs.py`: `sapheneia batch` with seasonal-naive over Parquet "
                "(daily series, horizon 7), default SAPHENEIA_JOBS_* settings, on a fresh local Ray "
                "instance; peak RSS summed over the process tree (Ray's shared-memory object store "
                f"counted where resident).\n\n| date | cores | {header} |\n|"
                + "---|" * (len(figures) + 2)
                + "\n"
            )
        text += f"| {datetime.now(UTC):%Y-%m-%d} | {cores} | {line} |\n"
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
