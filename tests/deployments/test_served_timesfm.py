"""TimesFM-2.0 and 2.5 served for real, from random-weight checkpoints, over HTTP.

The reference for every served forecast is the library's own forecast of that series alone, on the
same checkpoint, computed here in the test process: transformers' ``TimesFmModelForPrediction`` for
2.0, the ``timesfm`` package's ``TimesFM_2p5_200M_torch`` for 2.5. Tolerance 1e-5 (relative and
absolute): only float32 differences from padding a batch may separate the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import torch

from sapheneia.tasks import DECILES
from sapheneia.testing import wavy_series
from tests.deployments.conftest import assert_error
from tests.deployments.served_models import TIMESFM_2P5, TIMESFM_2P5_MAX_CONTEXT
from tests.deployments.test_batching import send_all
from tests.sapheneia.models.test_timesfm_2p0 import library_forecast

HORIZON = 24
LEVELS = DECILES
RTOL = ATOL = 1e-5
MODELS = ("timesfm-2.0", TIMESFM_2P5)

#: The library's forecast ``(horizon, 10)`` (mean, then Q10..Q90) of one daily series alone.
Reference = Callable[[np.ndarray], np.ndarray]


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def timesfm_2p0(checkpoints: dict[str, Path], offline: None) -> Reference:
    from transformers import TimesFmModelForPrediction

    model = TimesFmModelForPrediction.from_pretrained(checkpoints["timesfm-2.0"]).eval()
    # Daily data: TimesFM's frequency indicator 0.
    return lambda context: library_forecast(model, context, freq=0)[:HORIZON]


@pytest.fixture(scope="module")
def timesfm_2p5(checkpoints: dict[str, Path], offline: None) -> Reference:
    from timesfm import ForecastConfig, TimesFM_2p5_200M_torch

    model = TimesFM_2p5_200M_torch.from_pretrained(
        str(checkpoints[TIMESFM_2P5]), torch_compile=False
    )
    # The served model's max_context: 2.5 normalises over the padded context, so it must match.
    model.compile(
        ForecastConfig(
            max_context=TIMESFM_2P5_MAX_CONTEXT,
            max_horizon=128,
            normalize_inputs=True,
            use_continuous_quantile_head=True,
            fix_quantile_crossing=True,
        )
    )

    def reference(context: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            _, quantiles = model.forecast(horizon=HORIZON, inputs=[context])
        return np.asarray(quantiles[0])

    return reference


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> tuple[str, Reference]:
    """A served TimesFM id and its library reference."""
    fixture = "timesfm_2p0" if request.param == "timesfm-2.0" else "timesfm_2p5"
    return request.param, request.getfixturevalue(fixture)


def forecast_request(
    model_id: str,
    series_id: str,
    context: np.ndarray,
    covariates: dict[str, np.ndarray] | None = None,
    *,
    horizon: int = HORIZON,
    quantiles: tuple[float, ...] = LEVELS,
) -> dict[str, Any]:
    """One daily series; each covariate covers history + horizon, its future rows without ``y``."""
    covariates = covariates or {}
    length = len(context) + (horizon if covariates else 0)
    stamps = pd.date_range("2024-01-01", periods=length, freq="D")
    data = [
        {
            "unique_id": series_id,
            "ds": stamp.strftime("%Y-%m-%d"),
            "y": float(context[i]) if i < len(context) else None,
            **{name: float(values[i]) for name, values in covariates.items()},
        }
        for i, stamp in enumerate(stamps)
    ]
    return {
        "model": model_id,
        "horizon": horizon,
        "quantiles": list(quantiles),
        "data": data,
        "covariates": dict.fromkeys(covariates, "dynamic_numerical"),
    }


def served(body: dict[str, Any]) -> np.ndarray:
    """A one-series answer as ``(horizon, 10)``: the mean, then Q10..Q90, like the library's."""
    table = pd.DataFrame(body["forecast"])
    columns = ["mean", *(f"q-{level:g}" for level in LEVELS)]
    return table[columns].to_numpy(dtype=float)


def test_a_served_forecast_equals_the_library_forecast_alone(
    client: httpx.Client, model: tuple[str, Reference]
) -> None:
    model_id, reference = model
    context = wavy_series(100, seed=11)
    response = client.post("/api/v2/forecast", json=forecast_request(model_id, "s", context))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == model_id
    assert body["metadata"]["interpolated_quantiles"] == []
    np.testing.assert_allclose(served(body), reference(context), rtol=RTOL, atol=ATOL)


def test_32_concurrent_requests_batch_and_each_equals_the_library_alone(
    serve_url: str, model: tuple[str, Reference]
) -> None:
    model_id, reference = model
    contexts = [wavy_series(32 + 3 * i, seed=i) for i in range(32)]
    requests = [forecast_request(model_id, f"s{i}", c) for i, c in enumerate(contexts)]
    bodies = asyncio.run(send_all(serve_url, requests))
    batch_sizes = [body["metadata"]["batch_sizes"][0] for body in bodies]
    assert max(batch_sizes) > 1, batch_sizes
    for context, body in zip(contexts, bodies, strict=True):
        np.testing.assert_allclose(served(body), reference(context), rtol=RTOL, atol=ATOL)


def covariate_request(model_id: str, caller: int) -> dict[str, Any]:
    """Caller ``caller``'s series, driven by a known-future covariate ``promo``."""
    rng = np.random.default_rng(100 + caller)
    length = 60 + 5 * caller
    promo = rng.normal(size=length + HORIZON)
    context = wavy_series(length, seed=caller) + 4 * promo[:length]
    return forecast_request(model_id, f"caller{caller}", context, {"promo": promo})


@pytest.mark.parametrize("model_id", MODELS)
def test_a_callers_covariate_forecast_is_the_same_with_or_without_others_in_its_batch(
    serve_url: str, client: httpx.Client, model_id: str
) -> None:
    mine = covariate_request(model_id, caller=0)
    (alone,) = asyncio.run(send_all(serve_url, [mine]))
    assert alone["metadata"]["covariates_used"] is True

    others = [covariate_request(model_id, caller) for caller in range(1, 16)]
    bodies = asyncio.run(send_all(serve_url, [*others[:8], mine, *others[8:]]))
    shared = bodies[8]
    assert shared["forecast"][0]["unique_id"] == "caller0"
    # The regression is fitted on this caller's series only, so others in the batch change nothing.
    assert shared["metadata"]["batch_sizes"][0] > 1, shared["metadata"]
    np.testing.assert_array_equal(served(shared), served(alone))

    plain = {**mine, "covariates": {}, "data": [r for r in mine["data"] if r["y"] is not None]}
    without = client.post("/api/v2/forecast", json=plain).json()
    assert without["metadata"]["covariates_used"] is False
    assert np.abs(served(without)[:, 0] - served(alone)[:, 0]).max() > 1e-3


SEED_PARAMETERS = {
    "context_len": 64,
    "horizon_len": HORIZON,
    "use_covariates": True,
    "use_quantiles": True,
    "quantile_indices": [1, 3, 5, 7, 9],
}


@pytest.fixture(scope="module")
def seed_file_with_future(data_dir: Path) -> str:
    """The seed's sample file plus 24 future months with ``volume`` and an empty ``passengers``."""
    sample = pd.read_csv(data_dir / "uploads" / "sample_data.csv")
    last = pd.Timestamp(sample["date"].iloc[-1])
    future = pd.DataFrame(
        {
            "date": pd.date_range(last, periods=HORIZON + 1, freq="MS")[1:].strftime("%Y-%m-%d"),
            "passengers": np.nan,
            "volume": np.linspace(2.0, 2.5, HORIZON),
        }
    )
    name = "sample_data_with_future.csv"
    pd.concat([sample, future]).to_csv(data_dir / "uploads" / name, index=False)
    return name


def seed_inference(client: httpx.Client, model_name: str, source: str) -> dict[str, Any]:
    """The earlier product's README request, with a covariate, quantiles and bands."""
    request = {
        "data_source_url_or_path": source,
        "data_definition": {"passengers": "target", "volume": "dynamic_numerical"},
        "parameters": SEED_PARAMETERS,
    }
    response = client.post(f"/api/v1/{model_name}/inference", json=request)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bands(body: dict[str, Any]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(label, lower, upper)`` of each band."""
    found = body["prediction"]["quantile_bands"]
    return [
        (
            found[f"quantile_band_{i}_label"],
            np.array(found[f"quantile_band_{i}_lower"]),
            np.array(found[f"quantile_band_{i}_upper"]),
        )
        for i in range(len(found) // 3)
    ]


@pytest.mark.parametrize("model_name", ["timesfm-2.0", "timesfm20"])
def test_seed_request_with_covariates_and_quantile_bands(
    client: httpx.Client, seed_file_with_future: str, model_name: str
) -> None:
    body = seed_inference(client, model_name, seed_file_with_future)
    prediction = body["prediction"]
    assert prediction["method"] == "covariates_enhanced"
    assert prediction["metadata"]["covariates_used"] is True
    assert body["execution_metadata"]["model"] == "timesfm-2.0"
    assert len(prediction["point_forecast"][0]) == HORIZON
    assert body["visualization_data"]["dates_future"][0].startswith("1961-01-01")
    steps = np.array(prediction["quantile_forecast"][0])  # (horizon, 10): mean, Q10..Q90
    found = bands(body)
    assert [label for label, _, _ in found] == ["Q10–Q30", "Q30–Q50", "Q50–Q70", "Q70–Q90"]
    for (_, lower, upper), (low, high) in zip(found, [(1, 3), (3, 5), (5, 7), (7, 9)], strict=True):
        np.testing.assert_array_equal(lower, steps[:, low])
        np.testing.assert_array_equal(upper, steps[:, high])


def assert_bands_ordered(body: dict[str, Any]) -> None:
    for label, lower, upper in bands(body):
        assert np.all(lower <= upper), (label, lower - upper)


def test_timesfm_2p5_seed_bands_are_ordered(
    client: httpx.Client, seed_file_with_future: str
) -> None:
    # The adapter asks the package to fix quantile crossing, so even random weights give bands.
    body = seed_inference(client, TIMESFM_2P5, seed_file_with_future)
    assert body["prediction"]["method"] == "covariates_enhanced"
    assert_bands_ordered(body)


def test_timesfm_2p0_seed_bands_are_ordered(
    client: httpx.Client, seed_file_with_future: str
) -> None:
    assert_bands_ordered(seed_inference(client, "timesfm-2.0", seed_file_with_future))


def test_the_seed_file_without_future_rows_says_what_to_add(client: httpx.Client) -> None:
    # The earlier product's own request: its sample file has no rows past the history.
    request = {
        "data_source_url_or_path": "sample_data.csv",
        "data_definition": {"passengers": "target", "volume": "dynamic_numerical"},
        "parameters": SEED_PARAMETERS,
    }
    error = assert_error(
        client.post("/api/v1/timesfm20/inference", json=request), 422, "missing_future_covariates"
    )
    assert "covariate 'volume'" in error["message"]
    assert "Add rows after the history with an empty target" in error["message"]


@pytest.mark.parametrize("model_id", ["seasonal-naive", "chronos-bolt"])
def test_covariates_to_a_model_that_cannot_use_them_say_why(
    client: httpx.Client, model_id: str
) -> None:
    request = covariate_request(model_id, caller=0)
    error = assert_error(
        client.post("/api/v2/forecast", json=request), 400, "covariates_not_supported"
    )
    assert f"model '{model_id}' does not use covariates" in error["message"]
    assert "without covariate columns" in error["message"]
