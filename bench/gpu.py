"""Target 6: foundation models on a CUDA GPU, their own speed (the adapter in process) against
the served speed (Ray Serve on loopback, Arrow bodies and answers), at batch 1 to 512.

TimesFM-2.5, Chronos-Bolt (base size) and Chronos-2 with random full-size weights, bfloat16,
context 512, horizon 64. The ceiling is the adapter's series/s at each batch size; served, the
three models share the GPU (num_gpus 0.3 each) and closed-loop clients keep each model's batches
full at that size (max_batch_size = the batch, requests of up to 32 series).

    python -m bench.gpu [--batches 1,8,32,128,512] [--models timesfm-2.5,chronos-2] [--seconds 10]
    python -m bench.gpu --dry-run     # the same code path on CPU with tiny weights, to check it

Without a CUDA device it refuses (exit status 2) and says where to run it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from bench.common import ServeInstance, run_load, table

CONTEXT = 512
HORIZON = 64
PER_REQUEST = 32
MODELS = ("timesfm-2.5", "chronos-bolt-base", "chronos-2")
NO_CUDA = (
    "bench/gpu.py measures models on a CUDA device, and torch sees none here "
    "(torch.cuda.is_available() is False). Run it on a machine with an NVIDIA GPU and a CUDA build "
    "of torch (the image built with --build-arg TORCH_VARIANT=cu128), or pass --dry-run to check "
    "the script on CPU with tiny weights."
)


def checkpoints(root: Path, models: list[str], tiny: bool) -> dict[str, Path]:
    """Random-weight checkpoints written through each library's own save_pretrained."""
    from sapheneia.testing import chronos
    from sapheneia.testing.checkpoints import write_random_timesfm_2p5

    writers: dict[str, Callable[[Path], Path]] = {
        "timesfm-2.5": write_random_timesfm_2p5,  # the package fixes its size: always full
        "chronos-bolt-base": chronos.write_tiny_chronos_bolt
        if tiny
        else chronos.write_random_chronos_bolt_base,
        "chronos-2": chronos.write_tiny_chronos_2 if tiny else chronos.write_random_chronos_2,
    }
    return {model: writers[model](root / model) for model in models}


def model_entry(model: str, checkpoint: Path, device: str, batch: int, gpus: float) -> dict:
    options: dict[str, Any] = {"batch_size": batch}
    if model == "timesfm-2.5":
        options.update(max_context=CONTEXT, max_horizon=HORIZON)
    actor: dict[str, Any] = {"num_cpus": 1}
    if gpus:
        actor["num_gpus"] = gpus
    return {
        "id": model,
        "checkpoint": str(checkpoint),
        "device": device,
        "dtype": "bfloat16" if device == "cuda" else "float32",
        "options": options,
        "ray_actor_options": actor,
        "user_config": {"max_batch_size": batch, "batch_wait_timeout_s": 0.01},
    }


def series_frame(n_series: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2020-01-01", periods=CONTEXT, freq="D")
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i}" for i in range(n_series)], CONTEXT),
            "ds": np.tile(days, n_series),
            "y": (100 + rng.normal(size=(n_series, CONTEXT)).cumsum(axis=1)).reshape(-1),
        }
    )


def arrow_request(model: str, n_series: int) -> tuple[bytes, dict[str, str]]:
    data = pa.Table.from_pandas(series_frame(n_series), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    fields = {"model": model, "horizon": HORIZON, "quantiles": [0.1, 0.5, 0.9], "format": "arrow"}
    headers = {
        "Content-Type": "application/vnd.apache.arrow.stream",
        "X-Sapheneia-Request": json.dumps(fields),
    }
    return bytes(sink.getvalue().to_pybytes()), headers


def ceiling(model: str, checkpoint: Path, device: str, batch: int, repeats: int) -> float:
    """The adapter's series/s at ``batch``: median of ``repeats`` calls after a warm-up."""
    import torch

    from sapheneia.config import load_model_configs
    from sapheneia.data import ColumnRoles, build_tasks
    from sapheneia.models import create_adapter

    base = load_model_configs(Path("configs/models"))[model]
    entry = model_entry(model, checkpoint, device, batch, 0)
    config = base.model_copy(
        update={
            "checkpoint": entry["checkpoint"],
            "device": device,
            "dtype": entry["dtype"],
            "options": {**base.options, **entry["options"]},
        }
    )
    adapter = create_adapter(config)
    adapter.load()
    tasks = build_tasks(series_frame(batch), ColumnRoles(), HORIZON, (0.1, 0.5, 0.9))
    adapter.forecast(tasks)
    seconds = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        adapter.forecast(tasks)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    adapter.unload()
    if device == "cuda":
        torch.cuda.empty_cache()
    return batch / statistics.median(seconds)


def served(
    instance: ServeInstance,
    paths: dict[str, Path],
    device: str,
    batch: int,
    seconds: float,
) -> dict[str, tuple[float, str]]:
    """Series/s and batch sizes seen, per model, with every model's max_batch_size at ``batch``."""
    gpus = round(0.9 / len(paths), 2) if device == "cuda" else 0
    args = {
        "models_dir": "configs/models",
        "ingress": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 1}},
        "models": [model_entry(m, p, device, batch, gpus) for m, p in paths.items()],
    }
    # A changed user_config reconfigures the running replicas; weights stay loaded.
    instance.deploy(args)
    per_request = min(batch, PER_REQUEST)
    concurrency = 2 * math.ceil(batch / per_request)  # one batch running, one filling
    out = {}
    for model in paths:
        body, headers = arrow_request(model, per_request)
        url = f"{instance.url}/api/v2/forecast"
        run_load(url, body, concurrency, min(2.0, seconds), 0, headers, per_request)  # warm-up
        result = run_load(url, body, concurrency, seconds, concurrency, headers, per_request)
        out[model] = (result.series_per_s, result.batch_summary())
        print(
            model, batch, f"{result.series_per_s:.1f} series/s", result.batch_summary(), flush=True
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8,32,128,512")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each served turn")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per ceiling")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny weights, batches 1,2")
    args = parser.parse_args()
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        sys.exit(2)
    device = "cpu" if args.dry_run else "cuda"
    batches = [1, 2] if args.dry_run else [int(b) for b in args.batches.split(",")]
    models = [m for m in args.models.split(",") if m]
    seconds = 2.0 if args.dry_run else args.seconds
    repeats = 1 if args.dry_run else args.repeats
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        paths = checkpoints(root, models, tiny=args.dry_run)
        ceilings = {
            (m, b): ceiling(m, paths[m], device, b, repeats) for m in models for b in batches
        }
        (root / "data").mkdir()
        instance = ServeInstance(root / "data", root / "state")
        try:
            for batch in batches:
                for model, (rate, seen) in served(instance, paths, device, batch, seconds).items():
                    top = ceilings[(model, batch)]
                    rows.append([model, batch, top, rate, rate / top, seen])
        finally:
            instance.close()
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (dry run, tiny weights)"
    print(
        "\n".join(
            [
                "## GPU: served vs the model's own speed",
                "",
                f"{name}; context {CONTEXT}, horizon {HORIZON}, bfloat16 on CUDA; served with "
                f"Arrow bodies and answers, {PER_REQUEST} series per request at most.",
                "",
                table(
                    [
                        "model",
                        "batch",
                        "ceiling series/s",
                        "served series/s",
                        "served / ceiling",
                        "batch median / max",
                    ],
                    rows,
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
