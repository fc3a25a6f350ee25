"""Throughput ceiling of TimesFM-2.5 and TimesFM-2.0: the libraries called directly, no server.

Full-size models with random weights built from the libraries' default architectures (nothing is
downloaded; speed does not depend on the weight values), context 512, horizon 128. Prints a markdown
table of the median seconds per call and series per second for each batch size.

    python bench/bench_timesfm_ceiling.py [--with-64] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

CONTEXT = 512
HORIZON = 128


def contexts(batch: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [10 + rng.normal(size=CONTEXT).cumsum() for _ in range(batch)]


def timesfm_2p5(device: torch.device) -> Callable[[int], Callable[[], object]]:
    from timesfm import ForecastConfig, TimesFM_2p5_200M_torch

    model = TimesFM_2p5_200M_torch(torch_compile=False)
    model.model.device = device
    model.model.to(device).eval()

    def prepare(batch: int) -> Callable[[], object]:
        # What the adapter does: per_core_batch_size matched to the batch served.
        model.compile(
            ForecastConfig(
                max_context=CONTEXT,
                max_horizon=HORIZON,
                per_core_batch_size=batch,
                normalize_inputs=True,
                use_continuous_quantile_head=True,
                fix_quantile_crossing=True,
            )
        )
        inputs = contexts(batch)
        return lambda: model.forecast(horizon=HORIZON, inputs=list(inputs))

    return prepare


def full_timesfm_2p0(device: torch.device) -> Any:
    """transformers' default TimesFM-2.0 architecture (500M) with random weights."""
    from transformers import TimesFmConfig, TimesFmModelForPrediction

    model: Any = TimesFmModelForPrediction(TimesFmConfig(context_length=2048))
    return model.to(device).eval()


def timesfm_2p0(device: torch.device, model: Any = None) -> Callable[[int], Callable[[], object]]:
    model = model if model is not None else full_timesfm_2p0(device)

    def prepare(batch: int) -> Callable[[], object]:
        inputs = [torch.tensor(x, dtype=torch.float32, device=device) for x in contexts(batch)]
        return lambda: model(past_values=inputs, freq=[0] * batch, forecast_context_len=CONTEXT)

    return prepare


def median_seconds(call: Callable[[], object], repeats: int, device: torch.device) -> float:
    times = []
    with torch.inference_mode():
        call()  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-64", action="store_true", help="also measure batch 64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["timesfm-2.5", "timesfm-2.0"])
    args = parser.parse_args()
    device = torch.device(args.device)
    batches = [1, 8, 32, *([64] if args.with_64 else [])]
    builders = {"timesfm-2.5": timesfm_2p5, "timesfm-2.0": timesfm_2p0}
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        prepare = builders[name](device)
        for batch in batches:
            seconds = median_seconds(prepare(batch), args.repeats, device)
            rows.append(f"| {name} | {batch} | {seconds:.3f} | {batch / seconds:.1f} |")
            print(rows[-1], flush=True)
    print(f"\ncontext {CONTEXT}, horizon {HORIZON}, {device}, {torch.get_num_threads()} threads\n")
    print("| model | batch | median s | series/s |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
