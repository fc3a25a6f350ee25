"""Traffic splits and shadow models: a routed name sends each series to one model by weight, the
same one every time, and copies the request to a shadow model whose answers are only recorded."""

from __future__ import annotations

import io
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, AutoTheta
from statsforecast.utils import AirPassengersDF

from deployments.builder import AppArgs
from deployments.traffic import TrafficRoute
from tests.deployments.conftest import API_KEY, TRAFFIC_ROUTE, assert_error
from tests.deployments.test_unified import rows as air

ROUTE = TrafficRoute.model_validate(TRAFFIC_ROUTE)
HORIZON = 6
SEASON = 12  # monthly data


def test_a_series_meets_the_same_arm_and_the_shares_follow_the_weights() -> None:
    route = TrafficRoute(name="timesfm", split={"timesfm-2.5": 90, "timesfm-2.0": 10})
    ids = [f"store-{n}" for n in range(20_000)]
    arms = [route.arm(i) for i in ids]
    assert arms == [route.arm(i) for i in ids]  # sticky
    share = Counter(arms)["timesfm-2.5"] / len(ids)
    assert abs(share - 0.9) < 0.01, share  # five standard deviations of a binomial share
    # Moving 10 points of weight moves about 10 % of the series, all in one direction.
    shifted = TrafficRoute(name="timesfm", split={"timesfm-2.5": 80, "timesfm-2.0": 20})
    moved = [(a, shifted.arm(i)) for a, i in zip(arms, ids, strict=True) if a != shifted.arm(i)]
    assert set(moved) == {("timesfm-2.5", "timesfm-2.0")}
    assert abs(len(moved) / len(ids) - 0.1) < 0.01
    # The draw depends on the route's name too: two splits are independent of each other.
    other = TrafficRoute(name="other", split={"timesfm-2.5": 90, "timesfm-2.0": 10})
    assert [other.arm(i) for i in ids] != arms


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ({"name": "x", "split": {"auto-ets": 1, "nope": 1}}, "traffic 'x' names 'nope', not among"),
        ({"name": "x", "split": {"auto-ets": 1}, "shadow": "nope"}, "names 'nope'"),
        ({"name": "auto-ets", "split": {"auto-ets": 1}}, "is already a model id"),
        ({"name": "x", "split": {"auto-ets": 0}}, "weight of 'auto-ets' must be a positive"),
        ({"name": "x", "split": {}}, "split"),
        ({"name": "x", "split": {"auto-ets": 1}, "shadw": "auto-ets"}, "shadw"),
    ],
)
def test_a_wrong_split_stops_the_start_naming_what_is_wrong(
    traffic: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AppArgs.model_validate({"models": [{"id": "auto-ets"}], "traffic": [traffic]})


SERIES = {f"s{n}": 1.0 + n / 10 for n in range(16)}


def reference(model: str, scale: float) -> np.ndarray:
    """The model's mean forecast of AirPassengers × ``scale``, from statsforecast directly."""
    y = AirPassengersDF.tail(48)["y"].to_numpy(dtype=float) * scale
    if model == "seasonal-naive":
        return y[-SEASON:][:HORIZON]
    library = {"auto-ets": AutoETS, "auto-theta": AutoTheta}[model](season_length=SEASON)
    frame = pd.DataFrame(
        {"unique_id": "s", "ds": AirPassengersDF.tail(48)["ds"].to_numpy(), "y": y}
    )
    answer = StatsForecast(models=[library], freq="MS").forecast(df=frame, h=HORIZON)
    return answer[str(library)].to_numpy()


def check_routed_answer(body: dict[str, Any]) -> dict[str, str]:
    """Every series forecast by its arm, as that model forecasts it; the arm of each series."""
    assert body["model"] == ROUTE.name
    table = pd.DataFrame(body["forecast"])
    assert list(table.columns[:3]) == ["unique_id", "model", "ds"]
    arms = {}
    for series, rows in table.groupby("unique_id"):
        (arm,) = rows["model"].unique()
        assert arm == ROUTE.arm(str(series))
        np.testing.assert_allclose(rows["mean"], reference(arm, SERIES[str(series)]), rtol=1e-6)
        arms[str(series)] = arm
    counts = Counter(arms.values())
    expected = {arm: {"series": n} for arm, n in counts.items()}
    assert {a: {"series": v["series"]} for a, v in body["metadata"]["traffic"]["arms"].items()} == (
        expected
    )
    assert set(counts) == set(ROUTE.split), counts  # 16 series meet both arms of a 3 : 1 split
    return arms


def until(check, timeout_s: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def expected_shadow_gap(arms: dict[str, str]) -> float:
    """Mean absolute difference, per step, of the shadow's forecasts and the arms' (numpy)."""
    gaps = [
        np.abs(reference(ROUTE.shadow or "", SERIES[s]) - reference(arm, SERIES[s]))
        for s, arm in arms.items()
    ]
    return float(np.concatenate(gaps).mean())


@pytest.fixture(scope="module")
def routed_local(data_dir: Path) -> Iterator[TestClient]:
    """The in-process app with the session's split (auto-theta as the shadow), real adapters."""
    from deployments.api import create_api
    from deployments.options import IngressOptions
    from sapheneia.data import DataLimits
    from sapheneia.keys import digest
    from tests.deployments.local_gateway import LocalGateway

    options = IngressOptions(
        key_digests=[digest(API_KEY)],
        limits=DataLimits(data_dir=data_dir),
        rate_limit_per_minute=100_000,
        traffic=[ROUTE],
    )
    gateway = LocalGateway(sorted(ROUTE.models()), options)
    with TestClient(create_api(gateway), headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


def test_a_split_in_process_answers_each_series_with_its_arm_and_records_the_shadow(
    routed_local: TestClient,
) -> None:
    body = {"model": ROUTE.name, "horizon": HORIZON, "data": air(SERIES)}
    response = routed_local.post("/api/v2/forecast", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-traffic-route"] == ROUTE.name
    arms = check_routed_answer(response.json())

    def shadow() -> dict[str, Any]:
        (route,) = routed_local.get("/api/v2/traffic").json()["routes"]
        return route if route["shadow"]["series_compared"] == len(SERIES) else {}

    route = until(shadow, 60)
    assert route, routed_local.get("/api/v2/traffic").json()
    assert route["shadow"]["mean_absolute_difference"] == pytest.approx(
        expected_shadow_gap(arms), rel=1e-6
    )
    served = {arm["model"]: arm["series"] for arm in route["arms"]}
    assert served == dict(Counter(arms.values()))
    shares = {arm["model"]: arm["share"] for arm in route["arms"]}
    assert shares == {"auto-ets": 0.75, "seasonal-naive": 0.25}

    # CSV carries the arm too.
    csv = routed_local.post("/api/v2/forecast", json={**body, "format": "csv"})
    table = pd.read_csv(io.StringIO(csv.text))
    assert dict(zip(table["unique_id"], table["model"], strict=True)) == arms


def test_a_split_is_for_forecasts_only(routed_local: TestClient) -> None:
    backtest = {"models": [ROUTE.name], "horizon": 3, "n_windows": 1, "data": air({"a": 1.0})}
    error = assert_error(routed_local.post("/api/v2/backtest", json=backtest), 404)
    assert "is a traffic split, answered by /api/v2/forecast only" in error["message"]
    assert "auto-ets, seasonal-naive" in error["message"]


def test_the_served_split_is_sticky_and_its_shadow_is_recorded(client: httpx.Client) -> None:
    body = {"model": ROUTE.name, "horizon": HORIZON, "data": air(SERIES)}
    first = client.post("/api/v2/forecast", json=body)
    assert first.status_code == 200, first.text
    arms = check_routed_answer(first.json())
    again = client.post("/api/v2/forecast", json=body)
    assert check_routed_answer(again.json()) == arms

    def shadow() -> dict[str, Any]:
        (route,) = client.get("/api/v2/traffic").json()["routes"]
        return route if route["shadow"]["series_compared"] >= 2 * len(SERIES) else {}

    route = until(shadow, 60)
    assert route, client.get("/api/v2/traffic").json()
    served = Counter(arms.values())
    assert {a["model"]: a["series"] for a in route["arms"]} == {
        arm: 2 * n for arm, n in served.items()
    }
    assert route["shadow"]["failed_requests"] == 0
    assert route["shadow"]["mean_absolute_difference"] == pytest.approx(
        expected_shadow_gap(arms), rel=1e-6
    )
    # Counted for Prometheus too, per arm and per shadow outcome, on some node's endpoint.
    ports = os.environ["SAPHENEIA_TEST_METRICS_PORTS"].split(",")

    def exported() -> bool:
        text = "\n".join(httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=5).text for p in ports)
        return all(
            any(line.startswith(name) and label in line for line in text.splitlines())
            for name, label in [
                ("ray_sapheneia_routed_series_total", 'model="seasonal-naive"'),
                ("ray_sapheneia_routed_series_total", 'model="auto-ets"'),
                ("ray_sapheneia_shadow_series_total", 'outcome="compared"'),
            ]
        )

    assert until(exported, 60)


def test_history_names_one_model_not_a_split(routed_local: TestClient) -> None:
    body = {"model": ROUTE.name, "horizon": 3, "history": True, "data": air({"a": 1.0})}
    error = assert_error(routed_local.post("/api/v2/forecast", json=body), 400, "invalid_input")
    assert "ask for history from one of its models (auto-ets, seasonal-naive)" in error["message"]
