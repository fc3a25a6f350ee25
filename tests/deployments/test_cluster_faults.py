"""The service on a two-node cluster: placement across nodes, and what a lost replica, node or
ingress costs callers under steady load.

Each fault test deploys an application of its own, so the session's app keeps serving the other
tests; the one that kills the worker node adds a fresh worker before it ends. Counts of answers by
status are printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from tests.deployments.cluster_load import (
    FOUR_SERIES,
    ON_HEAD,
    LoadRun,
    busy_replica,
    deploy,
    node_id,
    placement,
    ready_with,
    run_load,
    wait_for,
)
from tests.deployments.conftest import (
    add_worker,
    kill_node,
    undeploy,
    wait_until_reported,
)


def load_with_fault(
    what: str,
    url: str,
    fault: Callable[[], None],
    recovered: Callable[[], bool],
    *,
    seconds: float,
    callers: int,
) -> LoadRun:
    """``callers`` callers forecasting FOUR_SERIES at ``url`` for ``seconds``; 6 s in, ``fault``,
    then (still under load) the seconds until ``recovered()`` holds, at most 30. Printed."""
    seen: dict[str, float] = {}

    def fault_then_wait() -> None:
        fault()
        seen["recovered_s"] = wait_for(recovered, 30, "recovery after the fault")

    run = run_load(
        f"{url}/api/v2/forecast",
        FOUR_SERIES,
        fault_then_wait,
        seconds=seconds,
        fault_after_s=6,
        callers=callers,
    )
    print(f"\n{what}: at {run.fault_at:.1f} s into the load; {run.summary()}; "
          f"/health recovered {seen['recovered_s']:.1f} s after the fault")  # fmt: skip
    return run


def assert_only_in_flight_failed(
    run: LoadRun, status: int, code: str | None, slack_s: float = 1.0
) -> None:
    """Every failure is ``status`` ``code``, at most one per request in flight at the fault, and
    was sent before it (plus ``slack_s`` for the router to hear of it), so requests sent
    afterwards all succeeded; and there are answers after the fault."""
    for answer in run.failed():
        assert (answer.status, answer.code) == (status, code), run.summary()
        assert answer.sent <= run.fault_at + slack_s, (answer, run.summary())
    assert len(run.failed()) <= len(run.in_flight_at_fault())
    later = [a for a in run.answers if a.sent > run.fault_at + slack_s]
    assert later and all(a.status == 200 for a in later), run.summary()


def test_the_session_app_runs_on_both_nodes(cluster: Any, serve_url: str) -> None:
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(alive) == 2
    placed = set(placement("api").values())
    # Serve spreads replicas over the nodes, so the ingress calls models on the other node.
    assert placed == alive


def auto_ets_app(
    name: str,
    serve_url: str,
    data_dir: Path,
    tmp_path: Path,
    *,
    replicas: int,
    ingress: dict[str, Any],
    **placing: Any,
) -> Iterator[str]:
    """An app ``/<name>`` with ``replicas`` auto-ets replicas (placed by ``placing``) and the
    ingress's ``ray_actor_options``; its URL once every replica is ready."""
    model = {
        "id": "auto-ets",
        "num_replicas": replicas,
        **placing,
        "ray_actor_options": {"num_cpus": 0.1},
        "user_config": {"max_batch_size": 8, "batch_wait_timeout_s": 0},
    }
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": ingress},
        "models": [model],
    }
    deploy(name, args, tmp_path, data_dir)
    url = f"{serve_url}/{name}"
    wait_for(lambda: ready_with(url, "auto-ets", replicas), 120, "ready replicas")
    yield url
    undeploy(name, tmp_path)


@pytest.fixture
def two_replicas(serve_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """auto-ets with two replicas; the ingress on the head."""
    yield from auto_ets_app("replicas", serve_url, data_dir, tmp_path, replicas=2, ingress=ON_HEAD)


def test_a_killed_replica_fails_only_its_requests_in_flight(two_replicas: str) -> None:
    killed: list[int] = []

    def kill_a_busy_replica() -> None:
        # The one holding a request now: the router may leave a replica idle for a moment, and
        # killing an idle one would test nothing.
        killed.append(busy_replica("replicas", "model-auto-ets"))
        os.kill(killed[0], signal.SIGKILL)

    run = load_with_fault(
        "replica SIGKILL",
        two_replicas,
        kill_a_busy_replica,
        # Serve starts a new replica; /health shows both ready within 30 s of the kill.
        lambda: (
            len(set(placement_now()) - set(killed)) == 2 and ready_with(two_replicas, "auto-ets", 2)
        ),
        seconds=25,
        callers=6,
    )
    (victim,) = killed
    assert run.failed(), "no request was in flight on the killed replica"
    # Six callers: at most the requests in flight at the kill fail.
    assert_only_in_flight_failed(run, 503, "model_unavailable")
    for answer in run.failed():
        assert answer.retry_after is not None and int(answer.retry_after) >= 1
    assert victim not in placement("replicas", "model-auto-ets")


def placement_now() -> dict[int, str]:
    return placement("replicas", "model-auto-ets")


@pytest.fixture
def spread(serve_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """auto-ets with one replica on each node (at most one per node); the ingress on the head."""
    yield from auto_ets_app(
        "spread",
        serve_url,
        data_dir,
        tmp_path,
        replicas=2,
        ingress=ON_HEAD,
        max_replicas_per_node=1,
    )


def test_a_lost_worker_node_leaves_traffic_on_the_head_and_its_replica_returns_with_a_new_node(
    cluster: Any, serve_url: str, spread: str
) -> None:
    worker = next(iter(cluster.worker_nodes))
    nodes = set(placement("spread", "model-auto-ets").values())
    assert nodes == {node_id(cluster.head_node), node_id(worker)}
    session = httpx.get(f"{serve_url}/health", timeout=10).json()["models"]
    try:
        run = load_with_fault(
            "worker node killed",
            spread,
            lambda: kill_node(cluster, worker),
            # The lost replica has nowhere to go (one per node): the head's serves alone meanwhile.
            lambda: ready_with(spread, "auto-ets", 1),
            seconds=30,
            callers=6,
        )
        assert_only_in_flight_failed(run, 503, "model_unavailable")
        # Ray's actor table lists the lost replica until the head has declared its node dead.
        head_only = {node_id(cluster.head_node)}
        dead_s = wait_for(
            lambda: set(placement("spread", "model-auto-ets").values()) == head_only,
            60,
            "node death",
        )
        print(f"the lost replica was marked dead {dead_s:.1f} s after the load")
    finally:
        new = add_worker(cluster)
    back = wait_for(lambda: ready_with(spread, "auto-ets", 2), 60, "the replica on the new node")
    print(f"a new worker node: 2 replicas ready again {back:.1f} s after it joined")
    assert set(placement("spread", "model-auto-ets").values()) == {
        node_id(cluster.head_node),
        node_id(new),
    }
    # The session app lost its replicas on that node too; Serve restarts them where CPUs are free.
    wait_until_reported(serve_url, set(session), timeout_s=180)
    statuses = httpx.get(f"{serve_url}/health", timeout=10).json()["models"]
    assert {m: s["status"] for m, s in statuses.items()} == {
        m: s["status"] for m, s in session.items()
    }


@pytest.fixture
def one_ingress(serve_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """auto-ets with one replica; the ingress wherever Serve places it."""
    ingress = {"num_cpus": 0.1}
    yield from auto_ets_app("front", serve_url, data_dir, tmp_path, replicas=1, ingress=ingress)


def test_a_killed_ingress_fails_only_its_requests_in_flight_and_comes_back(
    one_ingress: str,
) -> None:
    (victim,) = placement("front", "ingress")
    run = load_with_fault(
        "ingress SIGKILL",
        one_ingress,
        lambda: os.kill(victim, signal.SIGKILL),
        lambda: ready_with(one_ingress, "auto-ets", 1),
        seconds=25,
        callers=4,
    )
    assert run.failed(), "no request was in flight on the killed ingress"
    # The app that writes Sapheneia's error shape is gone: the answer is the Serve proxy's own, a
    # plain-text 500 for a replica that died mid-request (ray.serve._private.http_util). Requests
    # sent while Serve restarts the ingress wait in the proxy, then succeed.
    assert_only_in_flight_failed(run, 500, None)
    assert victim not in placement("front", "ingress")
