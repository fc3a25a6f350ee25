"""Chronos-Bolt, Chronos-2, FlowState and Prophet served for real, over HTTP.

The foundation models load tiny random-weight checkpoints; each served forecast is compared with the
library's own output for that series alone on the same checkpoint, computed here in the test
process. Tolerance 1e-5 relative (1e-6 absolute): only float32 differences from left-padding a batch
may separate the two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import torch

from sapheneia.testing import wavy_series
from tests.deployments.conftest import assert_error
from tests.deployments.served_models import PROPHET_OPTIONS, TIMESFM_2P5
from tests.deployments.test_batching import send_all
from tests.deployments.test_served_timesfm import forecast_request
from tests.sapheneia.models.test_chronos import HORIZON, pipeline_alone

QUANTILES = (0.1, 0.5, 0.9)
COLUMNS = ("mean", *(f"q-{level:g}" for level in QUANTILES))
RTOL, ATOL = 1e-5, 1e-6
FAMILIES = ("chronos-bolt", "chronos-2", "flowstate")

#: The library's forecast of one daily series alone, by answer column (``mean``, ``q-0.1``, ...).
Reference = Callable[[np.ndarray], dict[str, np.ndarray]]


def by_column(levels: list[float], values: np.ndarray, mean: np.ndarray) -> dict[str, np.ndarray]:
    """``values`` ``(n_levels, horizon)`` at ``levels`` as the answer's columns."""
    columns = {"mean": np.asarray(mean, dtype=float)}
    for level in QUANTILES:
        (row,) = np.flatnonzero(np.isclose(levels, level))
        columns[f"q-{level:g}"] = np.asarray(values[row], dtype=float)
    return columns


@pytest.fixture(scope="module")
def references(checkpoints: dict[str, Path]) -> dict[str, Reference]:
    from chronos import BaseChronosPipeline
    from tsfm_public.models.flowstate import FlowStateForPrediction
    from tsfm_public.models.flowstate.utils.utils import get_fixed_factor

    def chronos(model_id: str, as_input: Callable[[np.ndarray], Any]) -> Reference:
        pipeline = BaseChronosPipeline.from_pretrained(
            checkpoints[model_id], device_map="cpu", dtype=torch.float32
        )
        levels = list(pipeline.quantiles)
        return lambda context: by_column(levels, *pipeline_alone(pipeline, as_input(context)))

    flowstate = FlowStateForPrediction.from_pretrained(checkpoints["flowstate"]).eval()
    daily = get_fixed_factor("D")
    levels = [float(q) for q in flowstate.config.quantiles]

    def flowstate_alone(context: np.ndarray) -> dict[str, np.ndarray]:
        past = torch.tensor(context, dtype=torch.float32).reshape(1, -1, 1)
        with torch.no_grad():
            output = flowstate(past_values=past, scale_factor=daily, prediction_length=HORIZON)
        return by_column(
            levels, output.quantile_outputs[0, ..., 0].numpy(), output.prediction_outputs[0, :, 0]
        )

    return {
        "chronos-bolt": chronos("chronos-bolt", torch.tensor),
        "chronos-2": chronos("chronos-2", lambda context: {"target": context}),
        "flowstate": flowstate_alone,
    }


def request(model_id: str, series_id: str, context: np.ndarray, **covariates: np.ndarray) -> dict:
    return forecast_request(
        model_id, series_id, context, covariates, horizon=HORIZON, quantiles=QUANTILES
    )


def answer(body: dict[str, Any]) -> dict[str, np.ndarray]:
    """A one-series answer by column."""
    table = pd.DataFrame(body["forecast"])
    assert len(table) == HORIZON
    return {column: table[column].to_numpy(dtype=float) for column in COLUMNS}


def assert_same(served: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    for column in COLUMNS:
        np.testing.assert_allclose(
            served[column], expected[column], rtol=RTOL, atol=ATOL, err_msg=column
        )


@pytest.mark.parametrize("model_id", FAMILIES)
def test_served_forecasts_equal_the_library_alone_also_batched_with_other_callers(
    serve_url: str, client: httpx.Client, references: dict[str, Reference], model_id: str
) -> None:
    reference = references[model_id]
    # Pairs of equal length too: FlowState runs those in one forward pass.
    contexts = [wavy_series(40 + 8 * (i % 6), seed=i) for i in range(12)]

    alone = client.post("/api/v2/forecast", json=request(model_id, "s0", contexts[0]))
    assert alone.status_code == 200, alone.text
    assert alone.json()["metadata"]["interpolated_quantiles"] == []
    assert_same(answer(alone.json()), reference(contexts[0]))

    requests = [request(model_id, f"s{i}", context) for i, context in enumerate(contexts)]
    bodies = asyncio.run(send_all(serve_url, requests))
    batch_sizes = [body["metadata"]["batch_sizes"][0] for body in bodies]
    assert max(batch_sizes) > 1, batch_sizes
    for context, body in zip(contexts, bodies, strict=True):
        assert_same(answer(body), reference(context))


def promo(length: int) -> np.ndarray:
    """A known-future covariate over history + horizon: a spike every seventh day."""
    return (np.arange(length + HORIZON) % 7 == 0) * 50.0


def test_chronos_2_known_future_covariate_changes_the_forecast_and_stays_per_caller(
    serve_url: str, client: httpx.Client, checkpoints: dict[str, Path]
) -> None:
    context = wavy_series(50, seed=3)
    mine = request("chronos-2", "mine", context, promo=promo(50))
    plain = answer(
        client.post("/api/v2/forecast", json=request("chronos-2", "mine", context)).json()
    )
    (alone_body,) = asyncio.run(send_all(serve_url, [mine]))
    assert alone_body["metadata"]["covariates_used"] is True
    alone = answer(alone_body)
    assert not np.allclose(alone["q-0.5"], plain["q-0.5"])

    others = [
        request(
            "chronos-2", f"other{i}", wavy_series(30 + 7 * i, seed=20 + i), promo=promo(30 + 7 * i)
        )
        for i in range(3)
    ]
    bodies = asyncio.run(send_all(serve_url, [others[0], mine, *others[1:]]))
    assert bodies[1]["metadata"]["batch_sizes"][0] > 1, bodies[1]["metadata"]
    assert_same(answer(bodies[1]), alone)

    # The pipeline's own covariate forecast of this series alone.
    from chronos import BaseChronosPipeline

    pipeline = BaseChronosPipeline.from_pretrained(
        checkpoints["chronos-2"], device_map="cpu", dtype=torch.float32
    )
    values = promo(50)
    item = {
        "target": context,
        "past_covariates": {"promo": values[:50]},
        "future_covariates": {"promo": values[50:]},
    }
    assert_same(alone, by_column(list(pipeline.quantiles), *pipeline_alone(pipeline, item)))


def past_only_request(model_id: str, context: np.ndarray, temperature: np.ndarray) -> dict:
    """One series with a covariate sent for the history rows only (no rows past the history)."""
    body = request(model_id, "warm", context)
    for record, value in zip(body["data"], temperature, strict=True):
        record["temperature"] = float(value)
    body["covariates"] = {"temperature": "dynamic_numerical"}
    return body


def test_chronos_2_serves_a_past_only_covariate_and_other_models_ask_for_its_future(
    client: httpx.Client, checkpoints: dict[str, Path]
) -> None:
    context = wavy_series(60, seed=5)
    temperature = 10 + 5 * np.sin(np.arange(60) / 3)
    response = client.post(
        "/api/v2/forecast", json=past_only_request("chronos-2", context, temperature)
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["covariates_used"] is True

    from chronos import BaseChronosPipeline

    pipeline = BaseChronosPipeline.from_pretrained(
        checkpoints["chronos-2"], device_map="cpu", dtype=torch.float32
    )
    item = {"target": context, "past_covariates": {"temperature": temperature}}
    expected = by_column(list(pipeline.quantiles), *pipeline_alone(pipeline, item))
    assert_same(answer(response.json()), expected)

    error = assert_error(
        client.post(
            "/api/v2/forecast", json=past_only_request("timesfm-2.0", context, temperature)
        ),
        422,
        "missing_future_covariates",
    )
    assert error["message"].startswith(
        "series 'warm' needs values of covariate 'temperature' for all 12 future timestamps; "
        "12 are missing (first: 2024-03-01T00:00:00, "
    )
    assert "Add rows after the history with an empty target" in error["message"]


PROPHET_HISTORY = 120
PROPHET_HORIZON = 24


def test_prophet_on_air_passengers_equals_a_direct_fit_with_the_same_seed(
    client: httpx.Client,
) -> None:
    """Tolerance: ``yhat`` 1e-9 relative (same data, same deterministic optimiser); the quantiles
    1e-6 relative, being the same seeded posterior draws Prophet turns into ``yhat_lower``/``_upper``
    (only the percentile arithmetic differs)."""
    from prophet import Prophet
    from statsforecast.utils import AirPassengersDF

    frame = AirPassengersDF[["ds", "y"]].iloc[: PROPHET_HISTORY + PROPHET_HORIZON]
    history = frame.iloc[:PROPHET_HISTORY]
    body = {
        "model": "prophet",
        "horizon": PROPHET_HORIZON,
        "quantiles": list(QUANTILES),
        "data": [
            {"unique_id": "air", "ds": ds.strftime("%Y-%m-%d"), "y": float(y)}
            for ds, y in zip(history["ds"], history["y"], strict=True)
        ],
    }
    response = client.post("/api/v2/forecast", json=body)
    assert response.status_code == 200, response.text
    table = pd.DataFrame(response.json()["forecast"])

    model = Prophet(uncertainty_samples=PROPHET_OPTIONS["uncertainty_samples"], interval_width=0.8)
    model.fit(history)
    np.random.seed(PROPHET_OPTIONS["seed"])
    expected = model.predict(frame.iloc[PROPHET_HISTORY:].drop(columns="y"))

    assert list(pd.to_datetime(table["ds"])) == list(expected["ds"])
    np.testing.assert_allclose(table["mean"], expected["yhat"], rtol=1e-9)
    np.testing.assert_allclose(table["q-0.1"], expected["yhat_lower"], rtol=1e-6)
    np.testing.assert_allclose(table["q-0.9"], expected["yhat_upper"], rtol=1e-6)


SERVED = {
    "timesfm-2.0": (True, "Apache-2.0"),
    TIMESFM_2P5: (True, "Apache-2.0"),
    "chronos-bolt": (False, "Apache-2.0"),
    "chronos-2": (True, "Apache-2.0"),
    "flowstate": (False, "Apache-2.0"),
    "prophet": (True, "MIT"),
}


def test_models_lists_each_with_capabilities_and_licence(client: httpx.Client) -> None:
    listing = {m["id"]: m for m in client.get("/api/v2/models").json()["models"]}
    for model_id, (covariates, licence) in SERVED.items():
        entry = listing[model_id]
        assert entry["status"] == "ready", entry
        assert entry["licence"] == entry["capabilities"]["licence"] == licence
        assert entry["capabilities"]["covariates"] is covariates
        assert entry["capabilities"]["past_covariates"] is (model_id == "chronos-2")
    # Loaded checkpoints report their own limits: the tiny Chronos-Bolt reads 64 steps.
    assert listing["chronos-bolt"]["capabilities"]["max_context"] == 64
    deciles = [round(0.1 * i, 1) for i in range(1, 10)]
    assert listing["chronos-bolt"]["capabilities"]["native_quantiles"] == deciles
    assert listing["prophet"]["capabilities"]["native_quantiles"] == "any"
    assert listing["chronos-bolt-tiny"]["status"] == "unavailable"


def test_a_hub_id_offline_is_unavailable_quickly_with_the_fix_while_others_serve(
    client: httpx.Client, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    health = anonymous.get("/health").json()["models"]["chronos-bolt-tiny"]
    assert health["status"] == "unavailable"
    listing = {m["id"]: m for m in client.get("/api/v2/models").json()["models"]}
    assert "sapheneia pull chronos-bolt-tiny" in listing["chronos-bolt-tiny"]["reason"]

    # Loading again goes through the same lookup; offline it must fail in seconds, not hang.
    started = time.monotonic()
    response = admin.post("/api/v1/chronos-bolt-tiny/initialization")
    assert time.monotonic() - started < 10
    error = assert_error(response, 503, "model_unavailable")
    assert "sapheneia pull chronos-bolt-tiny" in error["message"]

    forecast = request("chronos-bolt-tiny", "s", wavy_series(40, seed=1))
    assert_error(client.post("/api/v2/forecast", json=forecast), 503, "model_unavailable")
    served = client.post("/api/v2/forecast", json={**forecast, "model": "chronos-bolt"})
    assert served.status_code == 200, served.text
