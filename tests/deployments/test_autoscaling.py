"""Autoscaling on the two-node cluster: a model goes from one replica to several under load, on
both nodes, and back to one after it.

Serve's autoscaler counts requests queued and running per replica (``target_ongoing_requests``);
the delays here are short so that the test fits in well under two minutes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deployments.cluster_load import (
    FOUR_SERIES,
    ON_HEAD,
    deploy,
    placement,
    run_load,
    wait_for,
)
from tests.deployments.conftest import API_KEY, undeploy

AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": 3,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 1,
    "downscale_delay_s": 5,
    "metrics_interval_s": 0.5,
    "look_back_period_s": 2,
}


@pytest.fixture
def scaling(serve_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": ON_HEAD},
        "models": [
            {
                "id": "auto-ets",
                "autoscaling_config": AUTOSCALING,
                # Room in the queue for every caller: until a second replica is up, one replica
                # holds all eight callers' requests. Shedding is test_overload's subject, not this.
                "max_queued_requests": 16,
                "ray_actor_options": {"num_cpus": 0.1},
                "user_config": {"max_batch_size": 2, "batch_wait_timeout_s": 0},
            }
        ],
    }
    deploy("scaling", args, tmp_path, data_dir)
    url = f"{serve_url}/scaling"
    wait_for(lambda: replicas(url) == 1, 120, "one replica")
    yield url
    undeploy("scaling", tmp_path)


def replicas(url: str) -> int:
    """Running replicas of the model, as /api/v2/models reports them (from the lifecycle board)."""
    listing = httpx.get(
        f"{url}/api/v2/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ).json()
    (model,) = [m for m in listing["models"] if m["id"] == "auto-ets"]
    return int(model["replicas"]) if model["status"] == "ready" else 0


def running_replicas() -> int:
    """Running replicas of the model, as Serve's controller counts them."""
    from ray import serve

    status = serve.status().applications["scaling"].deployments["model-auto-ets"]
    return int(status.replica_states.get("RUNNING", 0))


def test_a_model_scales_out_under_load_over_both_nodes_and_back_in_after(scaling: str) -> None:
    began = time.monotonic()
    seen: dict[str, Any] = {}

    def until_scaled_out() -> None:
        seen["up_s"] = wait_for(lambda: running_replicas() >= 2, 45, "a second replica")
        # Let the load run on until the autoscaler settles at its maximum (or 20 s more).
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: running_replicas() == AUTOSCALING["max_replicas"], 20, "the maximum")
        seen["peak"] = running_replicas()
        seen["nodes"] = set(placement("scaling", "model-auto-ets").values())
        # The lifecycle board hears of a new replica once it has loaded and reported.
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: replicas(scaling) >= 2, 10, "/api/v2/models to report the replicas")
        seen["reported"] = replicas(scaling)

    run = run_load(
        f"{scaling}/api/v2/forecast",
        FOUR_SERIES,
        until_scaled_out,
        seconds=70,
        fault_after_s=0,
        callers=8,
        stop_with_fault=True,
    )
    load_s = run.fault_done
    down_s = wait_for(lambda: running_replicas() == 1, 45, "back to one replica")
    print(
        f"\nautoscaling: {len(run.answers)} answers {dict(run.statuses())}; a second replica "
        f"{seen['up_s']:.1f} s into the load, peak {seen['peak']} replicas on "
        f"{len(seen['nodes'])} nodes (/api/v2/models said {seen['reported']}); back to one "
        f"{down_s:.1f} s after the load ended; {time.monotonic() - began:.0f} s in all"
    )
    assert run.statuses() == {200: len(run.answers)}, run.summary()
    assert seen["peak"] >= 2
    assert len(seen["nodes"]) == 2, seen
    assert seen["reported"] >= 2
    assert load_s < 70
    wait_for(lambda: replicas(scaling) == 1, 15, "/api/v2/models to report one replica")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"num_replicas": "auto"}, (1, 100, 2)),
        # Without "auto", Serve's own defaults would stop at max_replicas 1: no scaling at all.
        (
            {"num_replicas": "auto", "autoscaling_config": {"target_ongoing_requests": 4}},
            (1, 100, 4),
        ),
        ({"autoscaling_config": {"max_replicas": 4}}, (1, 4, 2)),
    ],
)
def test_num_replicas_auto_is_serves_autoscaling_with_the_operators_keys_over_it(
    entry: dict[str, Any], expected: tuple[int, int, float]
) -> None:
    from ray import serve

    from deployments.builder import AppArgs, deployment_options
    from deployments.model_server import ModelServer

    (parsed,) = AppArgs.model_validate({"models": [{"id": "auto-ets", **entry}]}).models
    deployment = serve.deployment(ModelServer, **deployment_options(parsed))
    config = deployment._deployment_config.autoscaling_config
    assert config is not None
    assert (config.min_replicas, config.max_replicas, config.target_ongoing_requests) == expected
