"""``sapheneia batch`` as a user runs it: a local Ray instance, a progress bar, a rerun resumes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[3]


def batch(*args: str, models_dir: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    where = ["--models-dir", str(models_dir)] if models_dir else []
    return subprocess.run(
        [sys.executable, "-m", "sapheneia.cli", *where, "batch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SAPHENEIA_JOBS_SERIES_PER_BUCKET": "20", **env},
    )


def daily(n: int, length: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i}" for i in range(n)], length),
            "ds": np.tile(pd.date_range("2023-01-01", periods=length, freq="D"), n),
            "y": np.arange(n * length, dtype=float) % 7,
        }
    )


def test_batch_writes_parts_and_a_rerun_skips_them(tmp_path: Path) -> None:
    data = daily(60, 20)
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


def test_two_actors_forecast_two_buckets_at_once(tmp_path: Path) -> None:
    """Each of the two buckets' forecast waits (up to two minutes) for the other to begin, so
    both meet only if both actors work at once. Ray Data's per-operator reservations once held
    the second bucket's shuffle back until the first actor had finished (one actor did all the
    work while the other stayed idle)."""
    source = tmp_path / "in.parquet"
    daily(40, 20).to_parquet(source)  # 40 series, 20 per bucket: two buckets
    models = tmp_path / "models"
    models.mkdir()
    (models / "rendezvous.yaml").write_text(
        "id: rendezvous\nadapter: tests.sapheneia.jobs.rendezvous:RendezvousDrift\n"
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    run = batch(
        str(source), "--model", "rendezvous", "--horizon", "3", "--out", str(out),
        "--actors", "2",
        models_dir=models,
        SAPHENEIA_TEST_RENDEZVOUS=str(marks),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "40 series (0 failed), 120 rows" in run.stdout
    assert len(list(marks.glob("started-*"))) == 2
    assert len(list(marks.glob("met-*"))) == 2, "the second bucket began after the first ended"


BAR = re.compile(r"(\d+)/(\d+) \[(\d+):(\d+)")  # tqdm: "20/60 [00:07<..."


def test_progress_shows_each_bucket_as_it_is_written(tmp_path: Path) -> None:
    """Three buckets of 6 s each on one actor: the bar moves once per bucket, as its part is
    written. Progress once came from the rows Ray Data hands back, at the end of a task (which
    holds every bucket the shuffle put in its partition) and one bucket late besides."""
    source = tmp_path / "in.parquet"
    daily(60, 20).to_parquet(source)  # about 20 series per bucket: three buckets
    models = tmp_path / "models"
    models.mkdir()
    (models / "slow.yaml").write_text("id: slow\nadapter: tests.sapheneia.jobs.slow:SlowDrift\n")
    run = batch(
        str(source), "--model", "slow", "--horizon", "3", "--out", str(tmp_path / "out"),
        "--actors", "1",
        models_dir=models,
        SAPHENEIA_TEST_SLOW_S="6",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "60 series (0 failed), 180 rows" in run.stdout
    shown: dict[int, int] = {}  # series done -> when the bar first showed it (s)
    for done, total, minutes, seconds in BAR.findall(run.stderr):
        if int(total) == 60:
            shown.setdefault(int(done), 60 * int(minutes) + int(seconds))
    moves = sorted(done for done in shown if done > 0)
    assert len(moves) == 3 and moves[-1] == 60, run.stderr[-3000:]  # once per bucket
    # Two more buckets of 6 s each were forecast after the first was shown (the bar polls
    # for parts every 2 s).
    assert shown[60] - shown[moves[0]] >= 8, shown
