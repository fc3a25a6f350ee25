"""A tracked backtest over HTTP on the session's real Ray Serve instance: the ingress replica logs
the run (off its event loop) to a local MLflow store that the test reads back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.deployments.conftest import API_KEY, undeploy
from tests.deployments.selection_cases import HORIZON, numpy_mase, records
from tests.deployments.test_tracking import noisy_series
from tests.sapheneia.test_tracking import read_run

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def mlflow_app(
    serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, object]]:
    """An application of its own (``/mlflow``) with SAPHENEIA_MLFLOW_TRACKING_URI set."""
    from ray import serve

    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings
    from sapheneia.tracking import TrackingTarget

    store = tmp_path_factory.mktemp("mlruns").as_uri()
    settings = Settings(
        api_keys=API_KEY,
        data_dir=data_dir,
        state_dir=tmp_path_factory.mktemp("mlflow-state"),
        mlflow_tracking_uri=store,
        mlflow_experiment="served",
        rate_limit_per_minute=100_000,
    )
    # MLflow 3 opens a file store only with this opt-in, in the ingress replica's process.
    allow = {"env_vars": {"MLFLOW_ALLOW_FILE_STORE": "true", "HF_HUB_OFFLINE": "1"}}
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.1, "runtime_env": allow}},
        "models": [{"id": "seasonal-naive", "ray_actor_options": {"num_cpus": 0.1}}],
    }
    serve.run(build_app_with_settings(args, settings), name="mlflow", route_prefix="/mlflow")
    url = f"{serve_url}/mlflow"
    deadline = time.monotonic() + 120
    while (
        httpx.get(f"{url}/health", timeout=5).json()["models"]["seasonal-naive"]["status"]
        != "ready"
    ):
        assert time.monotonic() < deadline, "seasonal-naive not ready on /mlflow"
        time.sleep(0.5)
    yield url, TrackingTarget(uri=store, experiment="served")
    undeploy("mlflow", settings.state_dir)


def test_a_tracked_backtest_over_http_answers_with_its_run(
    mlflow_app: tuple[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, target = mlflow_app
    data = noisy_series()
    body = {
        "models": ["seasonal-naive"],
        "horizon": HORIZON,
        "n_windows": 2,
        "data": records(data),
        "track": True,
    }
    response = httpx.post(
        f"{url}/api/v2/backtest",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # this process reads the same store
    run, series, artifact = read_run(target, answer["metadata"]["mlflow_run_id"])  # type: ignore[arg-type]

    assert run.info.status == "FINISHED"  # type: ignore[attr-defined]
    assert run.data.params["models"] == "seasonal-naive"  # type: ignore[attr-defined]
    assert run.data.tags["sapheneia.request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    forecasts = pd.DataFrame(answer["forecasts"])
    expected = numpy_mase(data, forecasts, "seasonal-naive")
    metric = run.data.metrics["seasonal-naive/MASE"]  # type: ignore[attr-defined]
    assert metric == pytest.approx(np.mean(list(expected.values())), rel=1e-9)
    assert series.set_index("unique_id")["MASE"].to_dict() == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(artifact["mean"], forecasts["mean"])
