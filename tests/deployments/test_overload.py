"""Overload, deadlines and cancellation over the real Serve instance.

Two applications of their own, each with a model of known speed (tests/deployments/slow_model.py: a
batch takes a fixed time, asleep, so capacity does not depend on how busy the cores are):

- ``/overload``: the model is the bottleneck (one series per batch, 0.1 s a batch, 2 requests on the
  replica and 4 queued at the ingress), the ingress is not. Over capacity the ingress sheds load with
  503 ``overloaded`` in the error shape.
- ``/narrow``: the ingress is the bottleneck (2 requests in flight, 2 queued at the proxy) and its
  deadline is short (1.5 s). Over capacity the proxy itself sheds load, in its own plain text.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.open_loop import Outcome, Shot, offer
from bench.soak import serve_pids
from tests.deployments.conftest import API_KEY, assert_error, undeploy
from tests.deployments.test_served_timesfm import forecast_request, series

SLOW_ADAPTER = "tests.deployments.slow_model:SlowNaiveAdapter"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

# /overload: capacity = 1 / SERVICE_S one-series requests a second.
SERVICE_S = 0.1
MODEL_ONGOING, MODEL_QUEUED = 2, 4
CAPACITY_PER_S = 1 / SERVICE_S
OFFERED_PER_S = 3.5 * CAPACITY_PER_S
LOAD_S = 60.0
# The ingress bounded too: on a machine whose cores other jobs crowd, the ingress itself can fall
# behind the offered load, and then the proxy sheds (its documented plain-text 503).
OVERLOAD_INGRESS = 8
# Proxy and ingress time per request ahead in their queues on that machine (measured with 32 + 32
# slots: p99 6.4 s against 0.7 s of model turns, about 0.09 s a slot).
INGRESS_SLOT_S = 0.15
# Time an accepted request may take beyond waiting its turn: proxy, ingress and HTTP on two busy
# cores shared with the load generator (measured: p50 0.79 s against 0.7 s of turns, p99 1.6 s).
# An unbounded queue would instead grow by 2.5 s of waiting every second of the run.
OVERHEAD_S = 1.5

# /overload's second model: a batch of any size takes SERIES_SERVICE_S; it holds SERIES_BOUND series.
SERIES_SERVICE_S = 2.0
SERIES_BOUND = 3

# /narrow
NARROW_SERVICE_S = 0.3
INGRESS_ONGOING, INGRESS_QUEUED = 2, 2
DEADLINE_S = 1.5
MANY = 20  # series in a request whose work (MANY x NARROW_SERVICE_S) is far past the deadline


# What Ray Serve 2.60's proxy answers when the ingress's queue is full (README, "Scaling and
# failures"): the body and content type are the proxy's own; status and Retry-After are ours.
def proxy_shed(max_queued: int) -> re.Pattern[str]:
    return re.compile(
        r"Request dropped due to backpressure \(num_queued_requests=\d+, "
        rf"max_queued_requests={max_queued}\)\."
    )


def is_proxy_shed(outcome: Outcome, max_queued: int) -> bool:
    return (
        outcome.status == 503
        and outcome.content_type == "text/plain; charset=utf-8"
        and outcome.retry_after == "1"
        and proxy_shed(max_queued).fullmatch(outcome.text) is not None
    )


def slow_model(model_id: str, seconds: float, **serve_options: Any) -> dict[str, Any]:
    return {
        "id": model_id,
        "adapter": SLOW_ADAPTER,
        "options": {"seconds_per_batch": seconds},
        "ray_actor_options": {"num_cpus": 0.1},
        "user_config": {"max_batch_size": 1, "batch_wait_timeout_s": 0},
        **serve_options,
    }


def deploy(
    serve_url: str,
    name: str,
    args: dict[str, Any],
    data_dir: Path,
    state_dir: Path,
    **settings: Any,
) -> str:
    """``args`` as an application of its own at ``/<name>`` on the session's Serve instance."""
    from ray import serve

    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings
    from tests.deployments.conftest import wait_until_reported

    config = Settings(
        api_keys=API_KEY,
        data_dir=data_dir,
        state_dir=state_dir,
        rate_limit_per_minute=10_000_000,
        **settings,
    )
    serve.run(build_app_with_settings(args, config), name=name, route_prefix=f"/{name}")
    url = f"{serve_url}/{name}"
    wait_until_reported(url, {m["id"] for m in args["models"]}, timeout_s=120)
    return url


@pytest.fixture(scope="module")
def overload(
    serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:

    args = {
        "ingress": {
            "ray_actor_options": {"num_cpus": 0.1},
            "max_ongoing_requests": OVERLOAD_INGRESS,
            "max_queued_requests": OVERLOAD_INGRESS,
        },
        "models": [
            slow_model(
                "slow-overload",
                SERVICE_S,
                max_ongoing_requests=MODEL_ONGOING,
                max_queued_requests=MODEL_QUEUED,
            ),
            # Bounded in series, not requests: at most SERIES_BOUND held at once.
            slow_model(
                "slow-series",
                SERIES_SERVICE_S,
                user_config={
                    "max_batch_size": 16,
                    "batch_wait_timeout_s": 0,
                    "max_queued_series": SERIES_BOUND,
                },
            ),
        ],
    }
    state = tmp_path_factory.mktemp("overload-state")
    yield deploy(serve_url, "overload", args, data_dir, state)
    undeploy("overload", state)


@pytest.fixture(scope="module")
def narrow(
    serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:

    args = {
        "ingress": {
            "ray_actor_options": {"num_cpus": 0.1},
            "max_ongoing_requests": INGRESS_ONGOING,
            "max_queued_requests": INGRESS_QUEUED,
        },
        "models": [slow_model("slow-narrow", NARROW_SERVICE_S, max_ongoing_requests=64)],
    }
    state = tmp_path_factory.mktemp("narrow-state")
    yield deploy(serve_url, "narrow", args, data_dir, state, request_timeout_s=DEADLINE_S)
    undeploy("narrow", state)


def body(model_id: str, n_series: int = 1) -> bytes:
    request = forecast_request(model_id, "s0", series(48, seed=0), horizon=6)
    request["data"] = [
        {**row, "unique_id": f"s{i}"} for i in range(n_series) for row in request["data"]
    ]
    return json.dumps(request).encode()


def rss(pids: dict[str, int]) -> dict[str, int]:
    import psutil

    return {name: psutil.Process(pid).memory_info().rss for name, pid in pids.items()}


def series_forecasted(model_id: str) -> int:
    """Series the model's live replicas have computed, from their reports to the state board."""
    import ray

    total = 0
    for board in ray.util.list_named_actors(all_namespaces=True):
        if not board["name"].startswith("sapheneia-model-state-"):
            continue
        actor = ray.get_actor(board["name"], namespace=board["namespace"])
        view = ray.get(actor.views.remote([model_id]), timeout=30)[model_id]
        total += sum(r.get("series_forecasted", 0) for r in view["replicas"].values())
    return total


def settled_count(model_id: str) -> int:
    """The count once the replicas have reported twice (every 0.5 s)."""
    time.sleep(1.5)
    return series_forecasted(model_id)


def run_load(url: str, model_id: str, rate: float, seconds: float) -> list[Outcome]:
    one = body(model_id)
    return asyncio.run(
        offer(
            url,
            HEADERS,
            lambda _: Shot("one", "/api/v2/forecast", one),
            rate,
            seconds,
            timeout_s=30,
        )
    )


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


def test_three_times_capacity_for_a_minute_sheds_with_503_and_stays_bounded(overload: str) -> None:
    pids = serve_pids("overload")
    # The ingress, slow-overload and slow-series (idle here).
    assert len([n for n in pids if n.startswith("SERVE_REPLICA")]) == 3, pids
    run_load(overload, "slow-overload", CAPACITY_PER_S, 5)  # warm every process up first
    before = rss(pids)

    outcomes = run_load(overload, "slow-overload", OFFERED_PER_S, LOAD_S)
    after = rss(pids)

    by_code: dict[str, int] = {}
    for outcome in outcomes:
        by_code[outcome.code] = by_code.get(outcome.code, 0) + 1
    accepted = [o.seconds for o in outcomes if o.status == 200]
    bound_s = (
        (MODEL_QUEUED + MODEL_ONGOING + 1) * SERVICE_S
        + 2 * OVERLOAD_INGRESS * INGRESS_SLOT_S
        + OVERHEAD_S
    )
    growth = {n: (after[n] - before[n]) / 2**20 for n in pids}
    print(
        f"offered {len(outcomes)} in {LOAD_S:.0f} s ({OFFERED_PER_S:g}/s, capacity "
        f"{CAPACITY_PER_S:g}/s): {by_code}; accepted p50 {np.median(accepted):.3f} s, "
        f"p99 {p99(accepted):.3f} s (bound {bound_s:.2f} s); RSS MiB before "
        f"{ {n: round(v / 2**20) for n, v in before.items()} }, growth "
        f"{ {n: round(v, 1) for n, v in growth.items()} }"
    )
    assert "ok" in by_code and "overloaded" in by_code, by_code
    for outcome in outcomes:
        if outcome.status != 200 and not is_proxy_shed(outcome, OVERLOAD_INGRESS):
            assert outcome.status == 503 and outcome.retry_after == "1", outcome
            error = json.loads(outcome.text)["error"]
            assert set(error) == {"code", "message", "request_id"}
            assert error["message"] == (
                "model 'slow-overload' is at capacity and its queue is full; retry after 1 s"
            )
    # The model kept working at capacity throughout, and answered within its queue's depth.
    assert by_code["ok"] >= 0.7 * CAPACITY_PER_S * LOAD_S, by_code
    assert p99(accepted) <= bound_s
    for name in pids:
        assert after[name] <= before[name] * 1.10 + 32 * 2**20, (name, before[name], after[name])


def test_overloaded_answer_has_the_error_shape_and_retry_after(overload: str) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=overload, headers=HEADERS, timeout=30) as http:
            one = body("slow-overload")
            return await asyncio.gather(
                *(http.post("/api/v2/forecast", content=one) for _ in range(20))
            )

    responses = asyncio.run(burst())
    # The ingress takes 8 at once; of those, 2 fit on the replica and 4 in the ingress's queue.
    overloaded = [r for r in responses if r.headers.get("content-type") == "application/json"]
    overloaded = [r for r in overloaded if r.status_code != 200]
    assert overloaded, [r.status_code for r in responses]
    for response in overloaded:
        assert_error(response, 503, "overloaded")
        assert response.headers["retry-after"] == "1"


def test_a_replica_bounds_the_series_it_holds_not_only_the_requests(overload: str) -> None:
    async def overlapping() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=overload, headers=HEADERS, timeout=60) as http:
            first = asyncio.create_task(
                http.post("/api/v2/forecast", content=body("slow-series", 1))
            )
            await asyncio.sleep(SERIES_SERVICE_S / 4)  # the first is held for SERIES_SERVICE_S
            second = await http.post("/api/v2/forecast", content=body("slow-series", SERIES_BOUND))
            return [await first, second]

    # 1 + 3 series pass the bound of 3, whichever request reaches the replica first.
    responses = asyncio.run(overlapping())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 503], [r.text for r in responses]
    shed = next(r for r in responses if r.status_code == 503)
    error = assert_error(shed, 503, "overloaded")
    assert f"max_queued_series ({SERIES_BOUND})" in error["message"], error
    assert shed.headers["retry-after"] == "1"

    # Into an empty replica, a request of any size is taken: more series than the bound, one batch.
    many = httpx.post(
        f"{overload}/api/v2/forecast", content=body("slow-series", 10), headers=HEADERS, timeout=60
    )
    assert many.status_code == 200, many.text
    assert len({row["unique_id"] for row in many.json()["forecast"]}) == 10


def test_a_full_ingress_queue_gets_the_proxys_own_503(narrow: str) -> None:
    capacity = 1 / NARROW_SERVICE_S  # the model is serial; the ingress holds 2 requests on it
    outcomes = run_load(narrow, "slow-narrow", 3 * capacity, 10)
    by_code: dict[str, int] = {}
    for outcome in outcomes:
        by_code[outcome.code] = by_code.get(outcome.code, 0) + 1
    print(f"offered {len(outcomes)}: {by_code}")
    assert set(by_code) == {"ok", "503 text/plain"}, by_code
    for outcome in outcomes:
        assert outcome.status == 200 or is_proxy_shed(outcome, INGRESS_QUEUED), outcome


def test_a_request_past_the_deadline_gets_504_and_its_queued_series_are_dropped(
    narrow: str,
) -> None:
    before = settled_count("slow-narrow")
    started = time.monotonic()
    response = httpx.post(
        f"{narrow}/api/v2/forecast", content=body("slow-narrow", MANY), headers=HEADERS, timeout=30
    )
    elapsed = time.monotonic() - started
    error = assert_error(response, 504, "request_timeout")
    assert error["message"] == (
        f"model 'slow-narrow' did not answer within {DEADLINE_S:g} s (SAPHENEIA_REQUEST_TIMEOUT_S); "
        "send fewer series per request or retry later"
    )
    assert DEADLINE_S <= elapsed < DEADLINE_S + 1.0
    time.sleep(MANY * NARROW_SERVICE_S)  # long enough for every series, had they been kept
    computed = settled_count("slow-narrow") - before
    # Those computed before the deadline, and the one running when it passed.
    assert computed <= math.ceil(DEADLINE_S / NARROW_SERVICE_S) + 1, computed


def test_a_caller_who_disconnects_has_its_queued_series_dropped(narrow: str) -> None:
    before = settled_count("slow-narrow")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{narrow}/api/v2/forecast",
            content=body("slow-narrow", MANY),
            headers=HEADERS,
            timeout=httpx.Timeout(30, read=0.6),
        )
    time.sleep(MANY * NARROW_SERVICE_S)
    computed = settled_count("slow-narrow") - before
    assert computed <= math.ceil(0.6 / NARROW_SERVICE_S) + 2, computed


def test_the_proxys_own_timeout_answers_408_in_plain_text_and_drops_the_series(
    narrow: str,
) -> None:
    """What the ingress deadline keeps callers from seeing: the proxy's timeout (here set per
    request below the ingress deadline with Serve's ``x-request-timeout-seconds`` header)."""
    before = settled_count("slow-narrow")
    response = httpx.post(
        f"{narrow}/api/v2/forecast",
        content=body("slow-narrow", MANY),
        headers={**HEADERS, "x-request-timeout-seconds": "0.8"},
        timeout=30,
    )
    assert response.status_code == 408
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    rid = response.headers["x-request-id"]
    assert response.text == f"Request {rid} timed out after 0.8s."
    time.sleep(MANY * NARROW_SERVICE_S)
    computed = settled_count("slow-narrow") - before
    assert computed <= math.ceil(0.8 / NARROW_SERVICE_S) + 2, computed


def test_the_ingress_deadline_is_below_the_proxys_timeout_by_default() -> None:
    import yaml

    from sapheneia.settings import Settings

    config = yaml.safe_load((Path(__file__).parents[2] / "serve_config.yaml").read_text())
    proxy_timeout_s = config["http_options"]["request_timeout_s"]
    # Room for data loading (a URL source may take SAPHENEIA_URL_TIMEOUT_S) before the model call.
    default = {name: field.default for name, field in Settings.model_fields.items()}
    assert default["request_timeout_s"] + default["url_timeout_s"] <= proxy_timeout_s
