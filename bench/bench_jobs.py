"""A large seasonal-naive job through ``sapheneia batch``: wall time and peak memory.

    PYTHONPATH=$PWD .venv/bin/python -m bench.bench_jobs --series 100000
    PYTHONPATH=$PWD .venv/bin/python -m bench.bench_jobs --series 1000000 --write

Writes the input (``--length`` daily points per series, rows shuffled within each row group of
20,000 series) as Parquet one row group at a time, runs the CLI in a subprocess on a fresh local
Ray instance, and samples the memory of that process tree (driver, Ray's own processes, workers)
every half second. The peak that counts is the sum of proportional set sizes (PSS: a page shared
by n processes counts 1/n in each, so shared libraries and Ray's shared-memory object store count
once); the sum of resident sizes (RSS), which counts them once per process, is reported beside it.
With ``--write`` the figures go to bench/RESULTS.md under "Jobs".
"""

from __future__ import annotations

import argparse
import contextlib
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
        order = rng.permutation(count * length)  # a job must gather each series' rows
        table = pa.table(
            {"unique_id": ids[order], "ds": np.tile(days, count)[order], "y": y[order]}
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def tree_memory(process: psutil.Process) -> tuple[int, int]:
    """(PSS, RSS) summed over ``process`` and its descendants, in bytes."""
    pss = rss = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker that exits meanwhile
            info = member.memory_full_info()
            pss, rss = pss + info.pss, rss + info.rss
    return pss, rss


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
    # Files, not pipes: neither the progress bar nor the workers' lines that Ray forwards to the
    # driver can fill a pipe that nobody reads until the end, and block the job.
    with (workdir / "batch.out").open("wb") as out_log, (workdir / "batch.log").open("wb") as log:
        process = psutil.Popen(command, cwd=ROOT, stdout=out_log, stderr=log)
        peak_pss = peak_rss = driver = 0
        while process.poll() is None:
            pss, rss = tree_memory(process)
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            with contextlib.suppress(psutil.Error):
                driver = max(driver, process.memory_info().rss)
            time.sleep(0.5)
    elapsed = time.perf_counter() - started
    output = (workdir / "batch.out").read_text()
    if process.returncode != 0:
        errors = (workdir / "batch.log").read_text()[-3000:]
        raise SystemExit(f"batch failed ({process.returncode}): {output[-3000:]} {errors}")
    rows = sum(pq.read_metadata(p).num_rows for p in out.glob("part-*.parquet"))
    return {
        "series": series,
        "input_rows": series * length,
        "output_rows": rows,
        "write_input_s": round(written, 1),
        "job_s": round(elapsed, 1),
        "series_per_s": round(series / elapsed),
        "peak_tree_pss_mib": round(peak_pss / 2**20),
        "peak_tree_rss_mib": round(peak_rss / 2**20),
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
        append_row(figures)
        print(f"added to the Jobs table of {RESULTS}")


def append_row(figures: dict[str, float]) -> None:
    """A dated row at the end of the Jobs table (the section and table made if missing)."""
    row = f"| {datetime.now(UTC):%Y-%m-%d} | {psutil.cpu_count()} | " + " | ".join(
        str(v) for v in figures.values()
    )
    lines = (RESULTS.read_text() if RESULTS.exists() else "").split("\n")
    if "## Jobs" not in lines:
        lines += [
            "## Jobs",
            "",
            "`bench/bench_jobs.py`: `sapheneia batch` with seasonal-naive over Parquet (daily "
            "series, horizon 7), default SAPHENEIA_JOBS_* settings, on a fresh local Ray instance; "
            "peak memory of the process tree: PSS summed (shared pages, Ray's shared-memory object "
            "store included, counted once) and RSS summed (counted once per process).",
            "",
            "| date | cores | " + " | ".join(figures) + " |",
            "|" + "---|" * (len(figures) + 2),
            "",
        ]
    at = lines.index("## Jobs") + 1
    while not lines[at].startswith("|"):  # the table's header
        at += 1
    while at < len(lines) and lines[at].startswith("|"):
        at += 1
    lines.insert(at, row + " |")
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
