"""``"track": true`` on /api/v2/backtest and model 'auto' forecasts, in process (real statsforecast
adapters, no Ray), with a real local MLflow store read back through MLflow's own client; the
served path is tests/deployments/test_tracking_served.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.deployments.conftest import API_KEY, assert_error
from tests.deployments.selection_cases import HORIZON, PATTERN, numpy_mase, post, records
from tests.sapheneia.test_tracking import read_run

CANDIDATES = ["seasonal-naive", "auto-ets"]


def noisy_series() -> dict[str, np.ndarray]:
    """A trend and a noisy monthly pattern: every MASE is defined (no exact seasonal history)."""
    rng = np.random.default_rng(3)
    return {
        "trend": 10 + 0.5 * np.arange(72) + rng.normal(0, 0.1, 72),
        "season": np.tile(PATTERN, 6) + rng.normal(0, 0.5, 72),
    }


@pytest.fixture
def tracked(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[httpx.Client, object]]:
    """An in-process app with MLflow tracking to a local file store, and the store's target."""
    from fastapi.testclient import TestClient

    from deployments.api import create_api
    from deployments.options import IngressOptions
    from sapheneia.data import DataLimits
    from sapheneia.keys import digest
    from sapheneia.tracking import TrackingTarget
    from tests.deployments.local_gateway import LocalGateway

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3's opt-in for a file store
    target = TrackingTarget(uri=(tmp_path / "mlruns").as_uri(), experiment="ops")
    options = IngressOptions(
        key_digests=[digest(API_KEY)], limits=DataLimits(data_dir=data_dir), mlflow=target
    )
    app = create_api(LocalGateway(CANDIDATES, options))
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client, target


def test_a_tracked_backtest_is_a_run_with_the_scores_of_its_forecasts(
    tracked: tuple[httpx.Client, object],
) -> None:
    client, target = tracked
    data = noisy_series()
    body = {"models": CANDIDATES, "horizon": HORIZON, "n_windows": 2, "data": records(data)}
    response = client.post("/api/v2/backtest", json={**body, "track": True})
    assert response.status_code == 200, response.text
    answer = response.json()
    run_id = answer["metadata"]["mlflow_run_id"]
    run, series, artifact = read_run(target, run_id)  # type: ignore[arg-type]

    params = run.data.params  # type: ignore[attr-defined]
    assert params["kind"] == "backtest" and params["models"] == "seasonal-naive,auto-ets"
    assert (params["horizon"], params["windows"], params["series_count"]) == ("6", "2", "2")
    assert run.data.tags["sapheneia.request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    forecasts = pd.DataFrame(answer["forecasts"])
    by_series = series.set_index(["model", "unique_id"])["MASE"]
    for model in CANDIDATES:
        expected = numpy_mase(data, forecasts, model)
        for uid, value in expected.items():
            assert by_series[(model, uid)] == pytest.approx(value, rel=1e-9)
        mean = np.mean(list(expected.values()))
        assert run.data.metrics[f"{model}/MASE"] == pytest.approx(mean, rel=1e-9)  # type: ignore[attr-defined]
    np.testing.assert_allclose(artifact["mean"], forecasts["mean"])
    # Untracked, the same backtest says no run.
    plain = post(client, "/api/v2/backtest", body)
    assert plain["metadata"]["mlflow_run_id"] is None


def test_a_tracked_auto_forecast_records_what_each_series_chose(
    tracked: tuple[httpx.Client, object],
) -> None:
    client, target = tracked
    body = {
        "model": "auto",
        "horizon": HORIZON,
        "metric": "MASE",
        "candidates": CANDIDATES,
        "data": records(noisy_series()),
        "track": True,
    }
    answer = post(client, "/api/v2/forecast", body)
    run, series, artifact = read_run(target, answer["metadata"]["mlflow_run_id"])  # type: ignore[arg-type]

    params = run.data.params  # type: ignore[attr-defined]
    assert params["kind"] == "auto" and params["candidates"] == "seasonal-naive,auto-ets"
    assert (params["metric"], params["windows"]) == ("MASE", "2")
    metrics = run.data.metrics  # type: ignore[attr-defined]
    chosen = {e["unique_id"]: e for e in answer["selection"]}
    for model in CANDIDATES:
        # With two candidates each series' entry carries both scores.
        scores = [
            e["score"] if e["selected_model"] == model else e["runner_up_score"]
            for e in chosen.values()
        ]
        assert metrics[f"{model}/MASE"] == pytest.approx(np.mean(scores), rel=1e-5)
        picked = sum(e["selected_model"] == model for e in chosen.values())
        assert metrics[f"{model}/series_selected"] == picked
    assert series.set_index("unique_id")["selected_model"].to_dict() == {
        uid: e["selected_model"] for uid, e in chosen.items()
    }
    rows = pd.DataFrame(answer["forecast"])
    np.testing.assert_allclose(artifact["mean"], rows["mean"])
    assert list(artifact["model"]) == list(rows["model"])
    # A CSV answer has no metadata: the run id comes as a header.
    response = client.post("/api/v2/forecast", json={**body, "format": "csv"})
    assert response.status_code == 200, response.text
    run_id = response.headers["x-mlflow-run-id"]
    assert run_id != answer["metadata"]["mlflow_run_id"]
    _, _, again = read_run(target, run_id)  # type: ignore[arg-type]
    np.testing.assert_allclose(again["mean"], rows["mean"])


def test_track_without_mlflow_on_the_server_is_a_400_naming_the_setting(
    local: httpx.Client,
) -> None:
    rows = records(noisy_series())
    backtest = {"models": ["auto-ets"], "horizon": HORIZON, "data": rows, "track": True}
    error = assert_error(local.post("/api/v2/backtest", json=backtest), 400, "invalid_input")
    assert "SAPHENEIA_MLFLOW_TRACKING_URI" in error["message"]
    auto = {"model": "auto", "horizon": HORIZON, "data": rows, "track": True}
    error = assert_error(local.post("/api/v2/forecast", json=auto), 400, "invalid_input")
    assert "SAPHENEIA_MLFLOW_TRACKING_URI" in error["message"]


def test_track_on_a_plain_forecast_is_a_400(tracked: tuple[httpx.Client, object]) -> None:
    client, _ = tracked
    body = {"model": "auto-ets", "horizon": HORIZON, "data": records(noisy_series())}
    error = assert_error(
        client.post("/api/v2/forecast", json={**body, "track": True}), 400, "invalid_input"
    )
    assert error["message"].startswith("track: only a model selection")


def test_a_store_that_fails_is_a_503_without_its_address(
    tracked: tuple[httpx.Client, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, target = tracked
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # MLflow's file store now refuses to open
    body = {"models": ["seasonal-naive"], "horizon": HORIZON, "data": records(noisy_series())}
    response = client.post("/api/v2/backtest", json={**body, "track": True})
    error = assert_error(response, 503, "tracking_unavailable")
    assert response.headers["retry-after"] == "30"
    assert target.uri not in error["message"]  # type: ignore[attr-defined]


def test_the_setting_turns_tracking_on_and_a_missing_extra_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from deployments.builder import tracking_target
    from sapheneia.errors import TrackingUnavailable
    from sapheneia.settings import Settings

    assert tracking_target(Settings()) is None
    monkeypatch.setenv("SAPHENEIA_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("SAPHENEIA_MLFLOW_EXPERIMENT", "forecasts")
    target = tracking_target(Settings())
    assert target is not None
    assert (target.uri, target.experiment) == ("http://127.0.0.1:5000", "forecasts")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    with pytest.raises(TrackingUnavailable, match=r"'mlflow' extra: pip install"):
        tracking_target(Settings())
