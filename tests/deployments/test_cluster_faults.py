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


def print_run(what: str, run: LoadRun, recovered_s: float) -> None:
    print(f"\n{what}: at {run.fault_at:.1f} s into the load; {run.summary()}; "
          f"/health recovered {recovered_s:.1f} s after the fault")  # fmt: skip


def assert_only_in_flight_failed(run: LoadRun, slack_s: float) -> None:
    """Every failure was sent before the fault (plus ``slack_s`` for the router to hear of it), so
    requests sent afterwards all succeeded; and there are answers after the fault."""
    for answer in run.failed():
        assert answer.sent <= run.fault_at + slack_s, (answer, run.summary())
    later = [a for a in run.answers if a.sent > run.fault_at + slack_s]
    assert later and all(a.status == 200 for a in later), run.summary()


def then_wait(fault: Callable[[], None], check: Callable[[], bool], into: dict[str, float]) -> Any:
    """``fault``, then (still under load) the seconds until ``check()`` holds, at most 30."""

    def run() -> None:
        fault()
        into["recovered_s"] = wait_for(check, 30, "recovery after the fault")

    return run


def test_the_session_app_runs_on_both_nodes(cluster: Any, serve_url: str) -> None:
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(alive) == 2
    placed = set(placement("api").values())
    # Serve spreads replicas over the nodes, so the ingress calls models on the other node.
    assert placed == alive


def two_auto_ets(
    name: str, serve_url: str, data_dir: Path, tmp_path: Path, **placing: Any
) -> Iterator[str]:
    """An app ``/<name>`` with two auto-ets replicas (placed by ``placing``), the ingress on the
    head; its URL once both are ready."""
    model = {
        "id": "auto-ets",
        "num_replicas": 2,
        **placing,
        "ray_actor_options": {"num_cpus": 0.1},
        "user_config": {"max_batch_size": 8, "batch_wait_timeout_s": 0},
    }
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": ON_HEAD},
        "models": [model],
    }
    deploy(name, args, tmp_path, data_dir)
    url = f"{serve_url}/{name}"
    wait_for(lambda: ready_with(url, "auto-ets", 2), 120, "two ready replicas")
    yield url
    undeploy(name, tmp_path)


@pytest.fixture
def two_replicas(serve_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    yield from two_auto_ets("replicas", serve_url, data_dir, tmp_path)


def test_a_killed_replica_fails_only_its_requests_in_flight(two_replicas: str) -> None:
    victim = next(iter(placement("replicas", "model-auto-ets")))
    seen: dict[str, float] = {}
    run = run_load(
        f"{two_replicas}/api/v2/forecast",
        FOUR_SERIES,
        # Serve starts a new replica; /health shows both ready within 30 s of the kill.
        then_wait(
            lambda: os.kill(victim, signal.SIGKILL),
            lambda: (
                len(set(placement_now()) - {victim}) == 2
                and ready_with(two_replicas, "auto-ets", 2)
            ),
            seen,
        ),
        seconds=25,
        fault_after_s=6,
        callers=6,
    )
    print_run("replica SIGKILL", run, seen["recovered_s"])
    failed = run.failed()
    assert failed, "no request was in flight on the killed replica"
    for answer in failed:
        assert (answer.status, answer.code) == (503, "model_unavailable"), run.summary()
        assert answer.retry_after is not None and int(answer.retry_after) >= 1
    # Six callers: at most the requests in flight at the kill fail.
    assert len(failed) <= len(run.in_flight_at_fault())
    assert_only_in_flight_failed(run, slack_s=1.0)
    assert victim not in placement("replicas", "model-auto-ets")


def placement_now() -> dict[int, str]:
    return placement("replicas", "model-auto-ets")


@pytest.fixture
def spread(serve_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """auto-ets with one replica on each node (at most one per node); the ingress on the head."""
    yield from two_auto_ets("spread", serve_url, data_dir, tmp_path, max_replicas_per_node=1)


def test_a_lost_worker_node_leaves_traffic_on_the_head_and_its_replica_returns_with_a_new_node(
    cluster: Any, serve_url: str, spread: str
) -> None:
    worker = next(iter(cluster.worker_nodes))
    nodes = set(placement("spread", "model-auto-ets").values())
    assert nodes == {node_id(cluster.head_node), node_id(worker)}
    session = httpx.get(f"{serve_url}/health", timeout=10).json()["models"]
    seen: dict[str, float] = {}
    try:
        run = run_load(
            f"{spread}/api/v2/forecast",
            FOUR_SERIES,
            # The lost replica has nowhere to go (one per node): the head's serves alone meanwhile.
            then_wait(
                lambda: kill_node(cluster, worker),
                lambda: ready_with(spread, "auto-ets", 1),
                seen,
            ),
            seconds=30,
            fault_after_s=6,
            callers=6,
        )
        print_run("worker node killed", run, seen["recovered_s"])
        for answer in run.failed():
            assert (answer.status, answer.code) == (503, "model_unavailable"), run.summary()
        assert len(run.failed()) <= len(run.in_flight_at_fault())
        assert_only_in_flight_failed(run, slack_s=1.0)
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
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.1}},
        "models": [
            {
                "id": "auto-ets",
                "ray_actor_options": {"num_cpus": 0.1},
                "user_config": {"max_batch_size": 8, "batch_wait_timeout_s": 0},
            }
        ],
    }
    deploy("front", args, tmp_path, data_dir)
    url = f"{serve_url}/front"
    wait_for(lambda: ready_with(url, "auto-ets", 1), 120, "the app")
    yield url
    undeploy("front", tmp_path)


def test_a_killed_ingress_fails_only_its_requests_in_flight_and_comes_back(
    one_ingress: str,
) -> None:
    (victim,) = placement("front", "ingress")
    seen: dict[str, float] = {}
    run = run_load(
        f"{one_ingress}/api/v2/forecast",
        FOUR_SERIES,
        then_wait(
            lambda: os.kill(victim, signal.SIGKILL),
            lambda: ready_with(one_ingress, "auto-ets", 1),
            seen,
        ),
        seconds=25,
        fault_after_s=6,
        callers=4,
    )
    print_run("ingress SIGKILL", run, seen["recovered_s"])
    assert run.failed(), "no request was in flight on the killed ingress"
    # The app that writes Sapheneia's error shape is gone: the answer is the Serve proxy's own, a
    # plain-text 500 for a replica that died mid-request (ray.serve._private.http_util).
    for answer in run.failed():
        assert (answer.status, answer.code) == (500, None), run.summary()
    assert len(run.failed()) <= len(run.in_flight_at_fault())
    # Requests sent while Serve restarts the ingress wait in the proxy, then succeed.
    assert_only_in_flight_failed(run, slack_s=1.0)
    assert victim not in placement("front", "ingress")
