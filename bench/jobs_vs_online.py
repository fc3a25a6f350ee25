"""Series per second of a job (``POST /api/v2/jobs``) against the online path (``/api/v2/forecast``
through the Python client), and of the same job on two Ray nodes against one. Run by hand:

    PYTHONPATH=$PWD .venv/bin/python -m bench.jobs_vs_online --quick      # 2,000 / 200 series
    PYTHONPATH=$PWD .venv/bin/python -m bench.jobs_vs_online --write      # 100,000 / 10,000

For each model (auto-ets, and TimesFM-2.5 from a full-size random-weight checkpoint written with
the package's own ``save_pretrained``), the same series are written once as Parquet in the data
directory, then forecast

- online: ``AsyncClient.forecast(df, h, model=...)``, the frame read from that Parquet beforehand
  (the blocking ``Client`` sends one request at a time; its asyncio twin is the client's own way
  to send several): it splits the frame into requests of whole series (1,000 series or 8 MiB of
  frame at most) and keeps ``--concurrency`` of them in flight (its default, 4); a few untimed
  requests warm each replica first;
- as a job: ``Client.submit("<file>.parquet", h, model=...)``, then its status polled every 0.5 s:
  timed from the submission until the client sees ``succeeded`` (the job's start-up included:
  planning pass, actors, model loads), and with the result downloaded as well;

on one Ray node and, for the job only, on the test suite's cluster shape: a head and a worker node
on 127.0.0.1 (``ray.cluster_utils.Cluster``) with half the single node's logical CPUs each (4 + 4
at 2 workers), same job and series. Both paths get the same ``--workers`` CPUs (default: the
machine's cores): auto-ets that many replicas and job actors of 1 CPU; TimesFM-2.5 one replica and
one actor with that many CPUs, which Ray turns into as many torch threads. The job's result is
checked against the online answer on a sample of series (``--sample``).

Both Ray nodes share this machine's cores, so the two-node row measures what spreading the job over
nodes costs (shuffle across object stores), not what a second machine would add.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.bench_jobs import write_input
from bench.common import API_KEY, QUANTILES, RESULTS, free_port, machine, table, wait_for_health

# Object store per node of the two-node cluster; the single node has both nodes' worth.
NODE_OBJECT_STORE = 1 << 30
SERIES_PER_BUCKET = 5000  # the service's default (SAPHENEIA_JOBS_SERIES_PER_BUCKET)
TIMEOUT_S = 6 * 3600.0


@dataclass(frozen=True)
class Workload:
    """One model's series, and how its ``--workers`` CPUs are used, the same way by both paths:
    ``threaded`` models run one replica (and one job actor) with all of them as torch threads,
    the others one replica (and one job actor) per CPU."""

    model: str
    series: int
    quick_series: int
    length: int
    horizon: int
    threaded: bool
    fields: dict[str, Any]  # the model's app entry, less id, replicas and CPUs
    random_weights: bool  # served from the full-size random-weight checkpoint the bench writes
    rtol: float  # parity: float64 statistics agree exactly, float32 TimesFM up to batch order

    def processes(self, workers: int) -> tuple[int, float]:
        """(replicas = job actors, CPUs each)."""
        return (1, float(workers)) if self.threaded else (workers, 1.0)


TIMESFM_OPTIONS = {"max_context": 512, "max_horizon": 128, "batch_size": 32}
WORKLOADS = {
    "auto-ets": Workload(
        "auto-ets",
        100_000,
        2_000,
        112,
        14,
        threaded=False,
        fields={"user_config": {"max_batch_size": 32, "batch_wait_timeout_s": 0}},
        random_weights=False,
        rtol=1e-9,
    ),
    "timesfm-2.5": Workload(
        "timesfm-2.5",
        10_000,
        200,
        512,
        128,
        threaded=True,  # Ray gives a replica or actor floor(num_cpus) torch threads
        fields={
            "device": "cpu",
            "options": TIMESFM_OPTIONS,
            "user_config": {"max_batch_size": 32, "batch_wait_timeout_s": 0.2},
        },
        random_weights=True,
        rtol=1e-4,
    ),
}


class Service:
    """Ray (one node, or a head and a worker node) with Serve on 127.0.0.1 and the app deployed
    for one workload at a time."""

    def __init__(self, nodes: int, root: Path, node_cpus: int) -> None:
        import ray
        from ray import serve

        self.nodes, self.root, self.cluster = nodes, root, None
        if nodes == 1:
            # "local": a new instance even when /tmp/ray names someone's running `ray start`.
            ray.init(
                address="local",
                _node_ip_address="127.0.0.1",
                num_cpus=2 * node_cpus,
                object_store_memory=2 * NODE_OBJECT_STORE,
                include_dashboard=False,
                _metrics_export_port=free_port(),
                configure_logging=False,
                log_to_driver=False,
            )
        else:
            from ray.cluster_utils import Cluster

            node: dict[str, Any] = {"node_ip_address": "127.0.0.1", "num_cpus": node_cpus}
            node["object_store_memory"] = NODE_OBJECT_STORE
            self.cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    **node,
                    "include_dashboard": False,
                    "metrics_export_port": free_port(),
                },
            )
            self.cluster.add_node(**node, metrics_export_port=free_port())
            self.cluster.wait_for_nodes()
            ray.init(address=self.cluster.address, configure_logging=False, log_to_driver=False)
        self.port = free_port()
        # One proxy, on the head: both nodes share 127.0.0.1.
        serve.start(
            proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": self.port}
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def deploy(self, work: Workload, series: int, checkpoint: Path | None, workers: int) -> None:
        """The app with this workload's model, and job settings for ``series`` series."""
        from ray import serve

        from deployments.builder import build_app_with_settings
        from sapheneia.settings import Settings

        actors, cpus = work.processes(workers)
        settings = Settings(
            api_keys=API_KEY,
            data_dir=self.root / "data",
            # A board per deployment, so that its jobs get this deployment's engine.
            state_dir=self.root / f"{work.model}-{self.nodes}",
            rate_limit_per_minute=10_000_000,
            request_timeout_s=3600,
            jobs_actors=actors,
            jobs_actor_cpus=cpus,
            jobs_cpus=actors * cpus + 1,  # the pool, and 1 CPU of read and shuffle tasks
            jobs_series_per_bucket=series_per_bucket(series, actors),
        )
        entry = {
            **work.fields,
            "id": work.model,
            "num_replicas": actors,
            "ray_actor_options": {"num_cpus": cpus},
        }
        if work.random_weights:
            entry["checkpoint"] = str(checkpoint)
        args = {
            "models_dir": "configs/models",
            "ingress": {"ray_actor_options": {"num_cpus": 0.25}},
            "models": [entry],
        }
        serve.run(build_app_with_settings(args, settings), name="api", route_prefix="/")
        statuses = wait_for_health(self.url, {work.model}, timeout_s=900)
        if statuses != {work.model: "ready"}:
            raise SystemExit(f"{work.model} did not load: {statuses}")

    def close(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()  # the driver first: a cluster with a driver connected keeps its head
        if self.cluster is not None:
            self.cluster.shutdown()


def series_per_bucket(series: int, actors: int) -> int:
    """The default, or less so that every actor gets 4 buckets at least (small runs)."""
    return max(1, min(SERIES_PER_BUCKET, math.ceil(series / (4 * actors))))


def online(
    url: str, frame: pd.DataFrame, work: Workload, concurrency: int
) -> tuple[float, pd.DataFrame]:
    """Seconds for the client to forecast every series of ``frame``, and its answer."""
    from sapheneia import AsyncClient

    async def call() -> pd.DataFrame:
        async with AsyncClient(
            url, API_KEY, timeout_s=TIMEOUT_S, max_concurrency=concurrency
        ) as client:
            return await client.forecast(frame, work.horizon, model=work.model, quantiles=QUANTILES)

    started = time.perf_counter()
    answer = asyncio.run(call())
    return time.perf_counter() - started, answer


def warm_up(url: str, frame: pd.DataFrame, work: Workload, replicas: int) -> None:
    """A few small requests, untimed, so that each replica has served once (a job's start-up,
    its actors and their model loads, is part of the job's time)."""
    from sapheneia import AsyncClient

    ids = frame["unique_id"].unique()[:4]
    small = frame[frame["unique_id"].isin(ids)]

    async def calls() -> None:
        async with AsyncClient(url, API_KEY, timeout_s=TIMEOUT_S) as client:
            requests = [
                client.forecast(small, work.horizon, model=work.model, quantiles=QUANTILES)
                for _ in range(2 * replicas)
            ]
            await asyncio.gather(*requests)

    asyncio.run(calls())


@dataclass
class JobRun:
    """A job as its client saw it: seconds from submission until the first bucket was reported
    written (and the series it reported then) and until 'succeeded', seconds to download the
    result, the result and the job's view."""

    first_s: float
    first_series: int
    ran_s: float
    fetch_s: float
    result: pd.DataFrame
    view: dict[str, Any]


def job(url: str, source: str, work: Workload) -> JobRun:
    import httpx

    from sapheneia import Client

    with Client(url, API_KEY, timeout_s=TIMEOUT_S) as client:
        started = time.perf_counter()
        handle = client.submit(source, work.horizon, model=work.model, quantiles=QUANTILES)
        first, first_series = None, 0
        while not (state := handle.status()).finished:
            if first is None and state.series_done:
                first, first_series = time.perf_counter() - started, state.series_done
            time.sleep(0.5)
        ran = time.perf_counter() - started
        if state.error is not None:
            raise state.error
        result = handle.result()
        fetched = time.perf_counter() - started - ran
    headers = {"Authorization": f"Bearer {API_KEY}"}
    view = httpx.get(f"{url}/api/v2/jobs/{handle.job_id}", headers=headers, timeout=60).json()
    if first is None:  # finished between two polls
        first, first_series = ran, len(result) // work.horizon
    return JobRun(first, first_series, ran, fetched, result, view)


def parity(got: pd.DataFrame, expected: pd.DataFrame, ids: list[str], rtol: float) -> str:
    """The job's rows for ``ids`` against the online answer's: 'equal' within ``rtol``."""
    keys = ["unique_id", "ds"]

    def rows(frame: pd.DataFrame) -> pd.DataFrame:
        part = frame[frame["unique_id"].isin(ids)].sort_values(keys).reset_index(drop=True)
        return part[[*keys, *(c for c in expected.columns if c not in keys)]]

    left, right = rows(got), rows(expected)
    if len(left) != len(right) or not left[keys].equals(right[keys]):
        return f"DIFFERENT rows ({len(left)} vs {len(right)})"
    values = left.drop(columns=keys).to_numpy(float), right.drop(columns=keys).to_numpy(float)
    scale = np.maximum(np.abs(values[1]), 1e-12)
    worst = float(np.max(np.abs(values[0] - values[1]) / scale)) if values[1].size else 0.0
    verdict = "equal" if worst <= rtol else "DIFFERENT"
    return f"{verdict} on {len(ids)} series (max rel. diff {worst:.1e}, tolerance {rtol:g})"


def sample_ids(series: int, count: int) -> list[str]:
    """Evenly spaced ids of the input (``bench_jobs.write_input`` names them s0, s1, ...)."""
    return [f"s{i}" for i in np.linspace(0, series - 1, min(count, series)).astype(int)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="auto-ets,timesfm-2.5", help="comma-separated")
    parser.add_argument(
        "--series",
        type=int,
        default=None,
        help="series per model (default: "
        "100,000 auto-ets, 10,000 timesfm-2.5; --quick: 2,000 / 200)",
    )
    parser.add_argument("--quick", action="store_true", help="the small sizes, to validate")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="CPUs of each path (default: the machine's cores): as many auto-ets replicas and "
        "job actors of 1 CPU; one TimesFM-2.5 replica and one actor with as many threads",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="online requests in flight")
    parser.add_argument("--sample", type=int, default=20, help="series in the parity check")
    parser.add_argument("--one-node-only", action="store_true", help="skip the two-node job")
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    works = [WORKLOADS[m] for m in args.models.split(",")]
    # Before ray is imported: Ray on loopback, time for a proxy to start on a loaded machine,
    # and no download (inherited by the raylets and their workers).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
    os.environ["HF_HUB_OFFLINE"] = "1"
    started, header = time.time(), machine()
    print(header, flush=True)

    def size(work: Workload) -> int:
        return args.series or (work.quick_series if args.quick else work.series)

    one: dict[str, dict[str, Any]] = {}
    two: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-online-") as directory:
        root = Path(directory)
        (root / "data").mkdir()
        checkpoint = None
        if any(w.random_weights for w in works):
            from sapheneia.testing import write_random_timesfm_2p5

            checkpoint = write_random_timesfm_2p5(root / "timesfm-2.5")
        for work in works:
            write_input(root / "data" / f"{work.model}.parquet", size(work), work.length)
        for nodes, into in ((1, one), (2, two)):
            if nodes == 2 and args.one_node_only:
                continue
            # Logical CPUs: the two-node cluster's 4 + 4 at 2 workers, as in the test suite.
            service = Service(nodes, root, node_cpus=2 * args.workers)
            try:
                for work in works:
                    into[work.model] = measure(service, work, size(work), checkpoint, args, one)
            finally:
                service.close()
    text = report(works, one, two, args)
    print(text)
    if args.write:
        command = "python -m bench.jobs_vs_online " + " ".join(sys.argv[1:])
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        minutes = (time.time() - started) / 60
        with RESULTS.open("a") as results:
            results.write(
                f"\n\n## Jobs against the online path ({date})\n\nCommand: `{command.strip()}`; "
                f"machine: {header}; the whole run took {minutes:.0f} min.\n\n{text}\n"
            )
        print(f"appended to {RESULTS}")


def measure(
    service: Service,
    work: Workload,
    series: int,
    checkpoint: Path | None,
    args: argparse.Namespace,
    one: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """One workload on one topology: the job, the online path (one node only), parity. The job
    goes first: its figures are the ones a long run most needs, should it be stopped."""
    service.deploy(work, series, checkpoint, args.workers)
    source = f"{work.model}.parquet"
    ids = sample_ids(series, args.sample)
    figures: dict[str, Any] = {"series": series}
    label = f"{work.model}, {series:,} series, {service.nodes} node(s)"
    print(f"{label}: job ...", flush=True)
    run = job(service.url, source, work)
    progress = run.view["progress"]
    if (
        progress["series_done"] != series
        or progress["series_failed"]
        or len(run.result) != (series * work.horizon)
    ):
        raise SystemExit(f"the job did not forecast every series: {run.view}")
    figures.update(job_s=run.ran_s, first_s=run.first_s, fetch_s=run.fetch_s)
    after = run.ran_s - run.first_s
    figures["steady"] = (series - run.first_series) / after if after > 0 else float("nan")
    figures["buckets"] = progress["buckets_total"]
    print(f"{label}: job {run.ran_s:.1f} s, first bucket at {run.first_s:.1f} s", flush=True)
    if service.nodes == 1:
        frame = pd.read_parquet(service.root / "data" / source)
        warm_up(service.url, frame, work, work.processes(args.workers)[0])
        print(f"{label}: online ...", flush=True)
        figures["online_s"], answer = online(service.url, frame, work, args.concurrency)
        del frame
        if len(answer) != series * work.horizon:
            raise SystemExit(f"online answer has {len(answer)} rows, not {series * work.horizon}")
        figures["answer"] = answer[answer["unique_id"].isin(ids)].copy()
        print(f"{label}: online {figures['online_s']:.1f} s", flush=True)
    expected = figures["answer"] if service.nodes == 1 else one[work.model]["answer"]
    figures["parity"] = parity(run.result, expected, ids, work.rtol)
    print(
        f"{label}: job {run.ran_s:.1f} s, first bucket at {run.first_s:.1f} s, server-side "
        f"{run.view['duration_seconds']:.1f} s, +{run.fetch_s:.1f} s download; {figures['parity']}",
        flush=True,
    )
    return figures


def report(
    works: list[Workload],
    one: dict[str, dict[str, Any]],
    two: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> str:
    rows, cluster_rows, checks = [], [], []
    w = args.workers
    for work in works:
        a = one[work.model]
        online_rate, job_rate = a["series"] / a["online_s"], a["series"] / a["job_s"]
        rows.append(
            [
                work.model,
                f"{a['series']:,}",
                round(a["online_s"], 1),
                online_rate,
                round(a["job_s"], 1),
                round(a["first_s"], 1),
                job_rate,
                a["steady"],
                f"{job_rate / online_rate:.2f}x",
                a["series"] / (a["job_s"] + a["fetch_s"]),
                a["buckets"],
            ]
        )
        checks.append(f"- {work.model}, job on 1 node vs online: {a['parity']}")
        if work.model in two:
            b = two[work.model]
            two_rate = b["series"] / b["job_s"]
            cluster_rows.append(
                [
                    work.model,
                    f"{b['series']:,}",
                    round(a["job_s"], 1),
                    round(b["job_s"], 1),
                    round(b["first_s"], 1),
                    job_rate,
                    two_rate,
                    f"{two_rate / job_rate:.2f}x",
                    f"{a['steady']:.3g} / {b['steady']:.3g}",
                ]
            )
            checks.append(f"- {work.model}, job on 2 nodes vs online: {b['parity']}")
    lines = [
        f"Online: `AsyncClient.forecast` of the frame, {args.concurrency} requests in flight (the "
        "client's split: 1,000 series or 8 MiB of frame per request), after a few untimed "
        "requests to each replica. Job: `Client.submit` of the same Parquet (in the data "
        "directory), timed from submission until the client saw `succeeded` (polled every "
        "0.5 s), its start-up included (planning pass, actors, model loads; 'first bucket' is when "
        "the first part was reported written, 'after first bucket' the series/s from then on). "
        f"auto-ets: {w} replicas / {w} job actors of 1 CPU, 112 daily points, horizon 14; "
        "TimesFM-2.5 (full size, random weights, context 512, horizon 128): 1 replica / 1 actor "
        f"of {w} CPUs ({w} torch threads). Quantiles 0.1, 0.5, 0.9. One node: {4 * w} logical "
        f"CPUs; two nodes: {2 * w} + {2 * w} on the same machine, so the second node adds no "
        "cores.",
        "",
        table(
            [
                "model",
                "series",
                "online s",
                "online series/s",
                "job s",
                "first bucket s",
                "job series/s",
                "job series/s after first bucket",
                "job / online",
                "job + download series/s",
                "buckets",
            ],
            rows,
        ),
    ]
    if cluster_rows:
        headers = [
            "model",
            "series",
            "job, 1 node s",
            "job, 2 nodes s",
            "2 nodes: first bucket s",
            "1 node series/s",
            "2 nodes series/s",
            "2 / 1",
            "after first bucket, 1 / 2 nodes series/s",
        ]
        lines += ["", table(headers, cluster_rows)]
    lines += ["", "Parity (the job's result against the online answer, a sample of series):"]
    return "\n".join([*lines, *checks])


if __name__ == "__main__":
    main()
