"""Target 5: many-series requests (32 series of 512 points each, horizon 128) to TimesFM-2.5
served, against the earlier one-request-at-a-time architecture (bench/seed_baseline.py), at
several concurrencies, in alternating rounds; series/s medians and the ratio per round.

    python -m bench.many [--rounds 3] [--concurrency 1,4,8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.common import ServeInstance, forecast_body, free_port, run_load, table
from bench.seed_baseline import SeedServer
from bench.served import timesfm_entry

PER_REQUEST = 32


def deploy(instance: ServeInstance, checkpoint: Path) -> None:
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.25}},
        "models": [timesfm_entry("timesfm-2.5", checkpoint, 32)],
    }
    instance.deploy(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()
    from sapheneia.testing import write_random_timesfm_2p5

    concurrencies = [int(c) for c in args.concurrency.split(",")]
    body = forecast_body("timesfm-2.5", PER_REQUEST)
    rates: dict[tuple[str, int], list[float]] = defaultdict(list)
    p50: dict[tuple[str, int], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        checkpoint = write_random_timesfm_2p5(root / "timesfm-2.5")
        (root / "data").mkdir()
        instance = ServeInstance(root / "data", root / "state")
        seed = None
        try:
            deploy(instance, checkpoint)
            seed = SeedServer(checkpoint, free_port())
            urls = {
                "served (batching on)": f"{instance.url}/api/v2/forecast",
                "seed baseline": f"{seed.url}/api/v2/forecast",
            }
            for url in urls.values():  # warm-up
                run_load(url, body, 2, 0.0, 2)
            for index in range(args.rounds):
                order = list(urls) if index % 2 == 0 else list(reversed(urls))
                for concurrency in concurrencies:
                    for name in order:
                        outcome = run_load(urls[name], body, concurrency, 0.0, 2 * concurrency)
                        rates[(name, concurrency)].append(outcome.series_per_s)
                        p50[(name, concurrency)].append(outcome.latency_ms(50))
                        print(name, concurrency, f"{outcome.series_per_s:.2f}", flush=True)
        finally:
            if seed is not None:
                seed.close()
            instance.close()
    rows = []
    verdicts = []
    for concurrency in concurrencies:
        served, seeded = (
            rates[("served (batching on)", concurrency)],
            rates[("seed baseline", concurrency)],
        )
        ratio = statistics.median(s / b for s, b in zip(served, seeded, strict=True))
        for name in ("served (batching on)", "seed baseline"):
            key = (name, concurrency)
            rows.append(
                [name, concurrency, statistics.median(rates[key]), statistics.median(p50[key])]
            )
        verdicts.append(
            f"- concurrency {concurrency}: served / seed {ratio:.2f} "
            f"({'faster: met' if ratio > 1 else 'not faster: not met'})"
        )
    print(
        "\n".join(
            [
                "## Many-series requests against the earlier architecture (target 5)",
                "",
                f"TimesFM-2.5 (full size, random weights), {PER_REQUEST} series of 512 points per "
                "request, horizon 128, JSON both ways; closed-loop clients, two requests each per "
                f"cell, {args.rounds} rounds alternating the order; medians, ratio per round.",
                "",
                table(["variant", "concurrency", "series/s", "p50 ms"], rows),
                "",
                *verdicts,
            ]
        )
    )


if __name__ == "__main__":
    main()
