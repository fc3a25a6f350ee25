"""1. Model ceiling: full-size random-weight TimesFM-2.5 and 2.0, context 512, horizon 128, called
in-process, through the library (bench_timesfm_ceiling) and through Sapheneia's adapter.

    python -m bench.ceiling [--quick]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench import bench_timesfm_ceiling as library
from bench.common import CONTEXT, HORIZON, QUANTILES, series_rows, table
from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter
from sapheneia.tasks import ForecastTask

OPTIONS = {"max_context": CONTEXT, "max_horizon": HORIZON, "batch_size": 64}


def tasks(n_series: int) -> list[ForecastTask]:
    """What the ingress hands the model: ``n_series`` tasks built from JSON-style rows."""
    frame = load_table(series_rows(n_series), DataLimits(data_dir=Path(tempfile.gettempdir())))
    return build_tasks(frame, ColumnRoles(), HORIZON, QUANTILES)


def adapter_2p5(checkpoint: Path) -> ModelAdapter:
    """The served TimesFM-2.5 adapter, loaded from a random-weight full-size checkpoint."""
    config = ModelConfig(
        id="timesfm-2.5",
        adapter="timesfm-2.5",
        checkpoint=str(checkpoint),
        device="cpu",
        options=OPTIONS,
    )
    adapter = create_adapter(config)
    adapter.load()
    return adapter


def adapter_2p0(model: Any) -> ModelAdapter:
    """The TimesFM-2.0 adapter around an in-memory full-size model (its loader needs files)."""
    config = ModelConfig(id="timesfm-2.0", adapter="timesfm-2.0", device="cpu", options=OPTIONS)
    adapter: Any = create_adapter(config)
    adapter.model, adapter.device, adapter.dtype = model, torch.device("cpu"), torch.float32
    adapter.capabilities = replace(adapter.capabilities, max_context=CONTEXT)
    adapter.loaded = True
    return adapter  # type: ignore[no-any-return]


def adapter_call(adapter: ModelAdapter, batch: int) -> Any:
    batch_tasks = tasks(batch)
    return lambda: adapter.forecast(batch_tasks)


def run(checkpoint: Path, quick: bool) -> tuple[str, dict[tuple[str, int], float]]:
    """The section for RESULTS.md and the adapter's series/s by (model, batch)."""
    device = torch.device("cpu")
    batches = [1, 8] if quick else [1, 8, 32, 64]
    repeats = 1 if quick else 3
    rows: list[list[object]] = []
    ceilings: dict[tuple[str, int], float] = {}

    def measure(model: str, via: str, batch: int, call: Any, times: int = repeats) -> None:
        seconds = library.median_seconds(call, times, device)
        rows.append([model, via, batch, torch.get_num_threads(), seconds, batch / seconds])
        print(rows[-1], flush=True)
        if via in ("adapter", "library"):
            # The same computation either way: the faster is the less disturbed estimate of the
            # ceiling on a shared machine.
            ceilings[(model, batch)] = max(ceilings.get((model, batch), 0.0), batch / seconds)

    torch.manual_seed(0)
    prepare = library.timesfm_2p5(device)
    served = adapter_2p5(checkpoint)
    for batch in batches:
        if batch <= 32:
            measure("timesfm-2.5", "library", batch, prepare(batch))
        measure("timesfm-2.5", "adapter", batch, adapter_call(served, batch))
    if not quick:
        # Ray gives a replica OMP_NUM_THREADS = floor(num_cpus): serve_config's num_cpus: 1 means this.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        measure("timesfm-2.5", "adapter, 1 thread", 32, adapter_call(served, 32), 1)
        torch.set_num_threads(threads)
    del prepare, served
    gc.collect()
    if not quick:
        model = library.full_timesfm_2p0(device)
        prepare = library.timesfm_2p0(device, model)
        served = adapter_2p0(model)
        for batch in batches[:3]:
            measure("timesfm-2.0", "library", batch, prepare(batch), 2)
            measure("timesfm-2.0", "adapter", batch, adapter_call(served, batch), 2)
        del prepare, served, model
        gc.collect()
    text = "\n".join(
        [
            "## 1. Model ceiling (in-process, no server)",
            "",
            f"Full-size random-weight models, context {CONTEXT}, horizon {HORIZON}, CPU, median of "
            f"{repeats} calls (2 for TimesFM-2.0, 1 for the 1-thread row) after a warm-up. 'library' calls the model package directly "
            "(bench/bench_timesfm_ceiling.py); 'adapter' calls Sapheneia's adapter with the "
            "ForecastTasks the ingress would build (quantile selection included).",
            "",
            table(["model", "via", "batch", "torch threads", "s / call", "series/s"], rows),
        ]
    )
    return text, ceilings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from sapheneia.testing import write_random_timesfm_2p5

    with tempfile.TemporaryDirectory() as directory:
        checkpoint = write_random_timesfm_2p5(Path(directory) / "timesfm-2.5")
        print(run(checkpoint, args.quick)[0])


if __name__ == "__main__":
    main()
