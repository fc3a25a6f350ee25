"""``sapheneia batch`` as a user runs it: a local Ray instance, a progress bar, a rerun resumes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[3]


def batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sapheneia.cli", "batch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "SAPHENEIA_JOBS_SERIES_PER_BUCKET": "20"},
    )


def test_batch_writes_parts_and_a_rerun_skips_them(tmp_path: Path) -> None:
    n, length = 60, 20
    data = pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i}" for i in range(n)], length),
            "ds": np.tile(pd.date_range("2023-01-01", periods=length, freq="D"), n),
            "y": np.arange(n * length, dtype=float) % 7,
        }
    )
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)
    out = tmp_path / "out"
    args = (str(source), "--model", "seasonal-naive", "--horizon", "5", "--out", str(out))
    first = batch(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "60 series (0 failed), 300 rows" in first.stdout
    assert "series" in first.stderr  # the progress bar
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 3
    result = pd.concat(pd.read_parquet(p) for p in parts)
    assert sorted(result["unique_id"].unique()) == sorted(data["unique_id"].unique())
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    parts[0].unlink()  # as if the first run had stopped before this bucket
    second = batch(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "60 series (0 failed), 300 rows" in second.stdout
    assert all(p.stat().st_mtime_ns == stamps[p] for p in parts[1:])
    assert parts[0].exists()
