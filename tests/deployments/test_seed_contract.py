"""The earlier product's requests and answers, served by a statistical model."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd

SEED_REQUEST = {
    "data_source_url_or_path": "sample_data.csv",
    "data_definition": {"passengers": "target"},
    "parameters": {
        "context_len": 120,
        "horizon_len": 12,
        "use_quantiles": True,
        "quantile_indices": [1, 3, 5, 7, 9],
    },
}


def test_inference_answers_in_the_seed_shape(client: httpx.Client) -> None:
    response = client.post("/api/v1/auto-ets/inference", json=SEED_REQUEST)
    assert response.status_code == 200, response.text
    body = response.json()
    prediction = body["prediction"]
    assert len(prediction["point_forecast"]) == 1 and len(prediction["point_forecast"][0]) == 12
    steps = prediction["quantile_forecast"][0]
    assert len(steps) == 12 and all(len(step) == 10 for step in steps)
    # Column 0 of each step is the mean, the point forecast.
    assert np.allclose([s[0] for s in steps], prediction["point_forecast"][0])
    assert prediction["method"] == "basic"
    assert prediction["metadata"]["covariates_used"] is False
    viz = body["visualization_data"]
    assert viz["target_name"] == "passengers"
    assert len(viz["historical_data"]) == 120 and len(viz["dates_historical"]) == 120
    # Monthly data continues on month starts.
    assert viz["dates_future"][0].startswith("1961-01-01")
    assert viz["dates_future"][-1].startswith("1961-12-01")
    assert body["execution_metadata"]["batch_size"] >= 1
    assert body["execution_metadata"]["adapter"] == "statsforecast"


def test_bands_are_labelled_by_the_quantiles_they_hold(client: httpx.Client) -> None:
    body = client.post("/api/v1/auto-ets/inference", json=SEED_REQUEST).json()
    bands = body["prediction"]["quantile_bands"]
    steps = np.array(body["prediction"]["quantile_forecast"][0])
    labels = [bands[f"quantile_band_{i}_label"] for i in range(4)]
    assert labels == ["Q10–Q30", "Q30–Q50", "Q50–Q70", "Q70–Q90"]
    for band, (low, high) in enumerate([(1, 3), (3, 5), (5, 7), (7, 9)]):
        assert np.allclose(bands[f"quantile_band_{band}_lower"], steps[:, low])
        assert np.allclose(bands[f"quantile_band_{band}_upper"], steps[:, high])
        assert np.all(
            np.array(bands[f"quantile_band_{band}_lower"])
            <= np.array(bands[f"quantile_band_{band}_upper"])
        )


def test_seed_paths_relative_to_the_data_folder_work(client: httpx.Client) -> None:
    request = {**SEED_REQUEST, "data_source_url_or_path": "data/uploads/sample_data.csv"}
    assert client.post("/api/v1/auto-ets/inference", json=request).status_code == 200
    request = {**SEED_REQUEST, "data_source_url_or_path": "uploads/sample_data.csv"}
    assert client.post("/api/v1/auto-ets/inference", json=request).status_code == 200


def test_context_dates_are_honoured(client: httpx.Client) -> None:
    parameters = {**SEED_REQUEST["parameters"], "context_len": None}
    parameters["context_start_date"] = "1955-01-01"
    parameters["context_end_date"] = "1958-12-01"
    request = {**SEED_REQUEST, "parameters": parameters}
    body = client.post("/api/v1/auto-ets/inference", json=request).json()
    dates = body["visualization_data"]["dates_historical"]
    assert dates[0].startswith("1955-01-01") and dates[-1].startswith("1958-12-01")
    assert body["visualization_data"]["dates_future"][0].startswith("1959-01-01")


def test_status_and_discovery(client: httpx.Client) -> None:
    status = client.get("/api/v1/auto-ets/status").json()
    assert status["model_status"] == "ready"
    assert status["details"].startswith("Source: ")
    models = client.get("/models").json()
    assert models["count"] == len(models["models"]) >= 4
    assert models["models"]["auto-ets"]["status"] == "ready"
    # Capabilities come with a key, from the replicas' own reports.
    listing = {m["id"]: m for m in client.get("/api/v2/models").json()["models"]}
    assert listing["auto-ets"]["capabilities"]["licence"]
    assert listing["auto-theta"]["replicas"] == 2


def test_same_series_as_a_direct_statsforecast_fit(client: httpx.Client) -> None:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS
    from statsforecast.utils import AirPassengersDF

    body = client.post("/api/v1/auto-ets/inference", json=SEED_REQUEST).json()
    history = AirPassengersDF.tail(120)
    expected = StatsForecast(models=[AutoETS(season_length=12)], freq="MS").forecast(
        df=history, h=12
    )
    served = pd.Series(body["prediction"]["point_forecast"][0])
    assert np.allclose(served, expected["AutoETS"].to_numpy(), rtol=1e-6)
