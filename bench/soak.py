"""Soak: the real service at saturation for N minutes with a realistic mix, appended to RESULTS.md.

python -m bench.soak                # 10 minutes (make soak)
python -m bench.soak --minutes 3

The mix: one- and hundred-series requests to three statistical models and TimesFM-2.5 (random
weights written by sapheneia.testing), and some bad requests. A closed loop of ``--clients`` callers
keeps every model busy. Reports requests, answers by code, p50/p99 per kind of request, and the
memory (RSS) of every Serve process at the start, middle and end. Goal: no unexpected answer, memory
growth under 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import API_KEY, RESULTS, ServeInstance, machine, percentile, series_rows, table
from bench.open_loop import Outcome, Shot, shoot
from bench.served import timesfm_entry

CONTEXT = 256
HORIZON = 24
GOOD = {"ok", "overloaded"}  # overloaded is the documented answer at saturation


@dataclass(frozen=True)
class Kind:
    label: str
    weight: int
    body: bytes
    expected: frozenset[str]


def request(model: str, n_series: int, seed: int) -> bytes:
    return json.dumps(
        {
            "model": model,
            "horizon": HORIZON,
            "quantiles": [0.1, 0.5, 0.9],
            "data": series_rows(n_series, CONTEXT, seed),
        }
    ).encode()


def mix() -> list[Kind]:
    good = frozenset(GOOD)
    gap = json.loads(request("auto-ets", 1, 9))
    gap["data"][100]["y"] = None  # an empty target inside the history
    return [
        Kind("1 series seasonal-naive", 30, request("seasonal-naive", 1, 1), good),
        Kind("1 series auto-ets", 15, request("auto-ets", 1, 2), good),
        Kind("1 series auto-theta", 15, request("auto-theta", 1, 3), good),
        Kind("1 series timesfm-2.5", 15, request("timesfm-2.5", 1, 4), good),
        Kind("100 series seasonal-naive", 8, request("seasonal-naive", 100, 5), good),
        Kind("100 series auto-theta", 4, request("auto-theta", 100, 6), good),
        Kind("100 series timesfm-2.5", 3, request("timesfm-2.5", 100, 7), good),
        Kind(
            "bad: unknown model", 3, request("no-such-model", 1, 8), frozenset({"model_not_found"})
        ),
        Kind(
            "bad: no horizon", 3, b'{"model": "auto-ets", "data": []}', frozenset({"invalid_input"})
        ),
        Kind(
            "bad: gap in target",
            4,
            json.dumps(gap).encode(),
            frozenset({"missing_target_values"}),
        ),
    ]


def app_args(checkpoint: Path) -> dict:
    statistical = {"ray_actor_options": {"num_cpus": 0.25}}
    timesfm = timesfm_entry("timesfm-2.5", checkpoint, 32)
    timesfm["options"] = {**timesfm["options"], "max_context": CONTEXT, "max_horizon": HORIZON}
    # Full-size TimesFM on shared CPU cores computes a few series a second: a replica holding more
    # than this would make its last caller wait past the deadline (504) instead of a prompt 503.
    timesfm["user_config"] = {**timesfm["user_config"], "max_queued_series": 128}
    return {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.25}},
        "models": [
            {**statistical, "id": "seasonal-naive", "user_config": {"max_batch_size": 64}},
            {**statistical, "id": "auto-ets", "user_config": {"max_batch_size": 32}},
            {**statistical, "id": "auto-theta", "user_config": {"max_batch_size": 32}},
            timesfm,
        ],
    }


def serve_pids(app: str) -> dict[str, int]:
    """Every Serve process that carries an app's traffic (its replicas, the proxies, the
    controller), each asked for its own pid."""
    import ray

    named = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(("SERVE_CONTROLLER", "SERVE_PROXY", f"SERVE_REPLICA::{app}#"))
    ]
    pids: dict[str, int] = {}
    for actor in named:
        handle = ray.get_actor(actor["name"], namespace=actor["namespace"])
        pid: Any = ray.get(handle.__ray_call__.remote(lambda _self: os.getpid()), timeout=30)
        pids[actor["name"]] = int(pid)
    return pids


def rss_mib(pids: dict[str, int]) -> dict[str, float]:
    import psutil

    return {name: psutil.Process(pid).memory_info().rss / 2**20 for name, pid in pids.items()}


async def soak(
    url: str, kinds: list[Kind], clients: int, seconds: float, pids: dict[str, int]
) -> tuple[list[Outcome], dict[str, dict[str, float]]]:
    """Closed loop for ``seconds``; the outcomes, and RSS at start, middle and end."""
    rng = random.Random(0)
    weights = [k.weight for k in kinds]
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    outcomes: list[Outcome] = []
    memory: dict[str, dict[str, float]] = {}

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:

        async def caller(until: float, started: float, into: list[Outcome]) -> None:
            while time.perf_counter() < until:
                kind = rng.choices(kinds, weights)[0]
                shot = Shot(kind.label, "/api/v2/forecast", kind.body)
                into.append(await shoot(http, shot, started))

        # A warm-up at full load before the first sample: the first minutes allocate what every
        # later request reuses (imports, caches, buffers, the allocator's arenas at peak
        # concurrency), which is start-up, not growth. Its answers are not counted.
        warm_until = time.perf_counter() + min(60.0, seconds / 10)
        await asyncio.gather(*(caller(warm_until, 0.0, []) for _ in range(clients)))
        memory["start"] = await asyncio.to_thread(rss_mib, pids)
        started = time.perf_counter()
        deadline = started + seconds

        async def sample_middle() -> None:
            await asyncio.sleep(seconds / 2)
            memory["middle"] = await asyncio.to_thread(rss_mib, pids)

        await asyncio.gather(
            sample_middle(), *(caller(deadline, started, outcomes) for _ in range(clients))
        )
    memory["end"] = rss_mib(pids)
    return outcomes, memory


def report(
    kinds: list[Kind], outcomes: list[Outcome], memory: dict, minutes: float, clients: int
) -> str:
    expected = {k.label: k.expected for k in kinds}
    codes = Counter(o.code for o in outcomes)
    unexpected = Counter(o.code for o in outcomes if o.code not in expected[o.label])
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.label].append(outcome)
    rows = [
        (
            k.label,
            len(by_kind[k.label]),
            ", ".join(f"{c} {n}" for c, n in Counter(o.code for o in by_kind[k.label]).items()),
            percentile([o.seconds * 1000 for o in by_kind[k.label]], 50),
            percentile([o.seconds * 1000 for o in by_kind[k.label]], 99),
        )
        for k in kinds
    ]
    memory_rows = []
    growths = []
    for name in memory["start"]:
        start, middle, end = (memory[m][name] for m in ("start", "middle", "end"))
        growth = (end - start) / start * 100
        growths.append(growth)
        short = name.split("::")[-1].split("#")[1] if "::" in name else name.split("-")[0]
        memory_rows.append((short, start, middle, end, f"{growth:+.1f} %"))
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Soak, {minutes:g} min at saturation ({date})",
        "",
        f"Command: `python -m bench.soak --minutes {minutes:g} --clients {clients}`; machine: "
        f"{machine()}. {clients} callers back to back, each request drawn from the mix below; "
        "memory first sampled after a warm-up at full load (a tenth of the run, at most 60 s, "
        "not counted).",
        "",
        f"- requests: {len(outcomes)} ({len(outcomes) / (minutes * 60):.1f}/s); answers by code: "
        + ", ".join(f"`{c}` {n}" for c, n in codes.most_common()),
        f"- unexpected answers: {sum(unexpected.values())}"
        + (f" ({dict(unexpected)})" if unexpected else ""),
        f"- largest memory growth of a Serve process, start to end: {max(growths):+.1f} % "
        f"(goal under 10 %)",
        "",
        table(["request", "sent", "answers", "p50 ms", "p99 ms"], rows),
        "",
        table(["Serve process", "RSS start MiB", "middle MiB", "end MiB", "growth"], memory_rows),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=24)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        from sapheneia.testing import write_random_timesfm_2p5

        checkpoint = write_random_timesfm_2p5(root / "timesfm-2.5")
        (root / "data").mkdir()
        instance = ServeInstance(root / "data", root / "state")
        try:
            statuses = instance.deploy(app_args(checkpoint))
            assert set(statuses.values()) == {"ready"}, statuses
            kinds = mix()
            pids = serve_pids("api")
            outcomes, memory = asyncio.run(
                soak(instance.url, kinds, args.clients, args.minutes * 60, pids)
            )
        finally:
            instance.close()
    text = report(kinds, outcomes, memory, args.minutes, args.clients)
    print(text)
    with RESULTS.open("a") as results:
        results.write("\n\n" + text + "\n")
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
