"""Target 7: what a million series cost in CPU-seconds, in the stack (proxy, ingress, the model
replica's own work) and in the model (the adapter's forecast), for a statistical model and a
foundation model.

The served processes' CPU (psutil: user + system of the Serve proxy, the ingress replica and the
model replica) is read over N requests of 32 series, less each process's idle rate; the model's
share is the adapter's forecast of the same tasks timed in this process (process CPU, so torch's
threads count). The model replica's CPU beyond that is the stack's (unpacking, batching, results).

    python -m bench.cost [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import API_KEY, HORIZON, QUANTILES, ServeInstance, table
from bench.ingress import FIELDS, LENGTH, REQUEST_HEADER, arrow_body, json_body

PER_REQUEST = 32
ROLES = {
    "proxy": "ProxyActor",
    "ingress": "ServeReplica:api:ingress",
    "model replica": "ServeReplica:api:model-",
}


def processes(model: str) -> dict[str, psutil.Process]:
    """The Serve processes among this process's descendants, by role."""
    found: dict[str, psutil.Process] = {}
    for _ in range(60):
        for child in psutil.Process().children(recursive=True):
            try:
                title = " ".join(child.cmdline())
            except psutil.Error:
                continue
            for role, marker in ROLES.items():
                wanted = f"{marker}{model}" if role == "model replica" else marker
                if wanted in title and role not in found:
                    found[role] = child
        if len(found) == len(ROLES):
            return found
        time.sleep(0.5)
    raise RuntimeError(f"Serve processes not found: {sorted(set(ROLES) - set(found))}")


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def adapter_cpu(model: str, checkpoint: Path | None, requests: int) -> float:
    """CPU seconds of the adapter forecasting ``requests`` x 32 tasks in this process."""
    from sapheneia.config import load_model_configs
    from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
    from sapheneia.models import create_adapter

    config = load_model_configs(Path("configs/models"))[model]
    if checkpoint is not None:
        options = {**config.options, "max_context": LENGTH, "max_horizon": HORIZON}
        config = config.model_copy(
            update={"checkpoint": str(checkpoint), "device": "cpu", "options": options}
        )
    adapter = create_adapter(config)
    adapter.load()
    rows = json.loads(json_body(PER_REQUEST))["data"]
    frame = load_table(rows, DataLimits(data_dir=Path(tempfile.gettempdir())))
    tasks = build_tasks(frame, ColumnRoles(), HORIZON, QUANTILES)
    adapter.forecast(tasks)
    started = time.process_time()
    for _ in range(requests):
        adapter.forecast(tasks)
    return time.process_time() - started


def served_cpu(url: str, model: str, kind: str, requests: int) -> dict[str, float]:
    """CPU seconds of each Serve process over ``requests`` sequential requests, idle removed."""
    procs = processes(model)
    idle = {role: cpu(p) for role, p in procs.items()}
    time.sleep(3.0)
    rate = {role: (cpu(p) - idle[role]) / 3.0 for role, p in procs.items()}
    fields = {**FIELDS, "model": model}
    if kind == "json":
        body = json.loads(json_body(PER_REQUEST))
        content = json.dumps({**body, "model": model}).encode()
        headers = {"Content-Type": "application/json"}
    else:
        content = arrow_body(PER_REQUEST)
        headers = {
            "Content-Type": "application/vnd.apache.arrow.stream",
            REQUEST_HEADER: json.dumps({**fields, "format": "arrow"}),
        }
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=600) as client:
        client.post(f"{url}/api/v2/forecast", content=content, headers=headers).raise_for_status()
        before = {role: cpu(p) for role, p in procs.items()}
        started = time.perf_counter()
        for _ in range(requests):
            answer = client.post(f"{url}/api/v2/forecast", content=content, headers=headers)
            answer.raise_for_status()
        seconds = time.perf_counter() - started
    return {role: cpu(p) - before[role] - rate[role] * seconds for role, p in procs.items()}


def deploy(instance: ServeInstance, checkpoint: Path) -> None:
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.25}},
        "models": [
            {
                "id": "seasonal-naive",
                "ray_actor_options": {"num_cpus": 0.25},
                "user_config": {"max_batch_size": 64, "batch_wait_timeout_s": 0.0},
            },
            {
                "id": "timesfm-2.5",
                "checkpoint": str(checkpoint),
                "device": "cpu",
                "threads": 2,
                "options": {"max_context": LENGTH, "max_horizon": HORIZON, "batch_size": 32},
                "ray_actor_options": {"num_cpus": 0.5},
                "user_config": {"max_batch_size": 32, "batch_wait_timeout_s": 0.0},
            },
        ],
    }
    instance.deploy(args)


def run(quick: bool) -> str:
    from sapheneia.testing import write_random_timesfm_2p5

    counts = {"seasonal-naive": 10 if quick else 30, "timesfm-2.5": 2 if quick else 6}
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        checkpoint = write_random_timesfm_2p5(root / "timesfm-2.5")
        in_model = {
            "seasonal-naive": adapter_cpu("seasonal-naive", None, counts["seasonal-naive"]),
            "timesfm-2.5": adapter_cpu("timesfm-2.5", checkpoint, counts["timesfm-2.5"]),
        }
        (root / "data").mkdir()
        instance = ServeInstance(root / "data", root / "state")
        try:
            deploy(instance, checkpoint)
            for model, requests in counts.items():
                for kind in ("json", "arrow"):
                    spent = served_cpu(instance.url, model, kind, requests)
                    series = requests * PER_REQUEST
                    per_million = {role: s / series * 1e6 for role, s in spent.items()}
                    model_s = in_model[model] / series * 1e6
                    replica_rest = max(per_million["model replica"] - model_s, 0.0)
                    stack = per_million["proxy"] + per_million["ingress"] + replica_rest
                    rows.append(
                        [
                            model,
                            kind,
                            per_million["proxy"],
                            per_million["ingress"],
                            replica_rest,
                            stack,
                            model_s,
                            100 * stack / (stack + model_s),
                        ]
                    )
                    print(rows[-1], flush=True)
        finally:
            instance.close()
    return "\n".join(
        [
            "## Cost per million series (target 7)",
            "",
            f"CPU-seconds per million series, requests of {PER_REQUEST} series of {LENGTH} points, "
            f"horizon {HORIZON}, answered as the body was sent (JSON rows -> JSON, Arrow -> "
            "Arrow). 'model' is the adapter's forecast of the same tasks in process; 'replica "
            "rest' the model replica's CPU beyond it.",
            "",
            table(
                [
                    "model",
                    "body",
                    "proxy",
                    "ingress",
                    "replica rest",
                    "stack total",
                    "model",
                    "stack %",
                ],
                rows,
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
