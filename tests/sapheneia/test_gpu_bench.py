"""bench/gpu.py measures on a CUDA device only: without one it says so and where to run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_the_gpu_bench_refuses_without_a_cuda_device() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(
        "bench/gpu.py measures models on a CUDA device, and torch sees none here"
    )
    assert "TORCH_VARIANT=cu128" in done.stderr and "--dry-run" in done.stderr
