"""``sapheneia.Client`` and ``AsyncClient`` against the session's real Ray Serve instance.

The reference for every client answer is the raw HTTP answer to the same request sent as JSON rows
(the client sends Parquet uploads), so both the client's encoding and its decoding are checked.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from statsforecast.utils import AirPassengersDF

from sapheneia import AsyncClient, Client, errors
from sapheneia.client import SapheneiaAPIError
from tests.deployments.conftest import API_KEY
from tests.deployments.served_models import TIMESFM_2P5

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sdk(serve_url: str) -> Iterator[Client]:
    with Client(serve_url, API_KEY) as c:
        yield c


class Recording(httpx.HTTPTransport):
    """A real transport that keeps the status of every answer."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        return response


def air(series: dict[str, float], months: int = 48) -> pd.DataFrame:
    """Scaled copies of the last ``months`` of AirPassengers, long format."""
    tail = AirPassengersDF.tail(months)
    return pd.concat(
        [tail.assign(unique_id=sid, y=tail["y"] * scale) for sid, scale in series.items()],
        ignore_index=True,
    )[["unique_id", "ds", "y"]]


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.assign(ds=frame["ds"].dt.strftime("%Y-%m-%d")).astype(object)
    return rows.where(rows.notna(), None).to_dict(orient="records")


def raw_forecast(http: httpx.Client, request: dict[str, Any]) -> pd.DataFrame:
    response = http.post("/api/v2/forecast", json=request)
    assert response.status_code == 200, response.text
    table = pd.DataFrame(response.json()["forecast"])
    return table.assign(ds=pd.to_datetime(table["ds"]))


def test_a_multi_series_forecast_equals_the_raw_http_answer(
    sdk: Client, client: httpx.Client
) -> None:
    frame = air({"b": 2.0, "a": 1.0, "c": 0.5})
    forecast = sdk.forecast(frame, 6, model="auto-ets", quantiles=[0.1, 0.5, 0.9])
    request = {"model": "auto-ets", "horizon": 6, "quantiles": [0.1, 0.5, 0.9]}
    expected = raw_forecast(client, {**request, "data": json_rows(frame)})
    pd.testing.assert_frame_equal(forecast, expected)
    assert list(forecast.columns) == [
        "unique_id",
        "ds",
        "mean",
        "median",
        "q-0.1",
        "q-0.5",
        "q-0.9",
    ]
    assert forecast.groupby("unique_id").size().to_dict() == {"a": 6, "b": 6, "c": 6}


def covariate_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two daily series driven by a known-future ``promo``: history, and ``X_df`` of 12 days."""
    rng = np.random.default_rng(5)
    frames = []
    for sid, length in (("p", 60), ("q", 75)):
        promo = rng.normal(size=length + 12)
        y = 10 + np.sin(np.arange(length + 12) / 4) + 4 * promo
        stamps = pd.date_range("2024-01-01", periods=length + 12, freq="D")
        frames.append(
            pd.DataFrame({"unique_id": sid, "ds": stamps, "y": y, "promo": promo}).assign(
                y=lambda f, n=length: f["y"].where(f.index < n)
            )
        )
    both = pd.concat(frames, ignore_index=True)
    future = both["y"].isna()
    return both[~future].reset_index(drop=True), both[future].drop(columns="y").reset_index(
        drop=True
    )


def test_future_covariates_in_X_df_equal_the_raw_answer_and_change_the_forecast(
    sdk: Client, client: httpx.Client
) -> None:
    history, future = covariate_frames()
    forecast = sdk.forecast(history, 12, model=TIMESFM_2P5, quantiles=[0.5], X_df=future)
    rows = json_rows(pd.concat([history, future], ignore_index=True))
    request = {
        "model": TIMESFM_2P5,
        "horizon": 12,
        "quantiles": [0.5],
        "covariates": {"promo": "dynamic_numerical"},
    }
    expected = raw_forecast(client, {**request, "data": rows})
    pd.testing.assert_frame_equal(forecast, expected, rtol=1e-5, atol=1e-5)
    plain = sdk.forecast(history.drop(columns="promo"), 12, model=TIMESFM_2P5, quantiles=[0.5])
    assert np.abs(plain["mean"] - forecast["mean"]).max() > 1e-3


def test_a_frame_split_into_several_requests_equals_the_one_request_answer(
    serve_url: str, sdk: Client
) -> None:
    frame = air({f"s{i}": 1.0 + i / 10 for i in range(11)})
    one = sdk.forecast(frame, 12, model="seasonal-naive", quantiles=[0.1, 0.9])
    sent = Recording()
    with Client(serve_url, API_KEY, max_series_per_request=3, transport=sent) as split:
        merged = split.forecast(frame, 12, model="seasonal-naive", quantiles=[0.1, 0.9])
    assert sent.statuses == [200] * 4
    pd.testing.assert_frame_equal(merged, one)


def test_a_frame_over_the_servers_body_cap_is_halved_until_it_fits(
    serve_url: str, client: httpx.Client
) -> None:
    # 40 daily series of 3,000 days decode to more than the session server's 2 MiB cap.
    stamps = pd.date_range("2015-01-01", periods=3000, freq="D")
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:02d}" for i in range(40)], len(stamps)),
            "ds": np.tile(stamps, 40),
            "y": np.tile(np.sin(np.arange(3000) / 7), 40) + np.repeat(np.arange(40.0), 3000),
        }
    )
    sent = Recording()
    with Client(serve_url, API_KEY, max_request_bytes=2**40, transport=sent) as whole:
        forecast = whole.forecast(frame, 7, model="seasonal-naive", quantiles=[0.5])
    assert sent.statuses == [413, 200, 200]
    assert forecast.groupby("unique_id").size().to_dict() == {f"s{i:02d}": 7 for i in range(40)}
    expected = raw_forecast(
        client,
        {
            "model": "seasonal-naive",
            "horizon": 7,
            "quantiles": [0.5],
            "data": json_rows(frame[frame["unique_id"] == "s17"]),
        },
    )
    pd.testing.assert_frame_equal(
        forecast[forecast["unique_id"] == "s17"].reset_index(drop=True), expected
    )


def test_backtest_equals_the_raw_http_answer(sdk: Client, client: httpx.Client) -> None:
    frame = air({"a": 1.0, "b": 3.0}, months=72)
    report = sdk.backtest(frame, 12, models=["auto-ets", "seasonal-naive"], n_windows=2)
    request = {"models": ["auto-ets", "seasonal-naive"], "horizon": 12, "n_windows": 2}
    response = client.post("/api/v2/backtest", json={**request, "data": json_rows(frame)})
    assert response.status_code == 200, response.text
    body = response.json()
    pd.testing.assert_frame_equal(report.metrics, pd.DataFrame(body["metrics"]))
    assert len(report.forecasts) == len(body["forecasts"]) == 2 * 2 * 2 * 12
    assert report.metadata["windows"] == 2


def test_models_lists_what_the_route_lists(sdk: Client, client: httpx.Client) -> None:
    assert sdk.models() == client.get("/api/v2/models").json()["models"]


def test_errors_arrive_as_their_classes_with_the_request_id(serve_url: str, sdk: Client) -> None:
    with pytest.raises(errors.ModelNotFound) as raised:
        sdk.forecast(air({"a": 1.0}), 3, model="no-such-model")
    assert raised.value.status == 404 and "auto-ets" in raised.value.message
    assert re.fullmatch(r"[0-9a-f-]{16,}", raised.value.request_id or "")
    with pytest.raises(errors.UnknownColumn, match="'sales'"):
        sdk.forecast(air({"a": 1.0}), 3, model="auto-ets", target_col="sales")
    stranger = Client(serve_url, "wrong-key-0123456789")
    with stranger, pytest.raises(errors.Unauthorized) as denied:
        stranger.models()
    assert isinstance(denied.value, SapheneiaAPIError) and denied.value.status == 401


def test_the_async_client_answers_like_the_sync_client(serve_url: str, sdk: Client) -> None:
    frame = air({f"s{i}": 1.0 + i for i in range(6)})
    history, future = covariate_frames()

    async def run() -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
        async with AsyncClient(serve_url, API_KEY, max_series_per_request=2) as c:
            return await asyncio.gather(
                c.forecast(frame, 6, model="auto-ets"),
                c.forecast(history, 12, model=TIMESFM_2P5, quantiles=[0.5], X_df=future),
                c.models(),
            )

    split, covariates, models = asyncio.run(run())
    pd.testing.assert_frame_equal(split, sdk.forecast(frame, 6, model="auto-ets"))
    expected = sdk.forecast(history, 12, model=TIMESFM_2P5, quantiles=[0.5], X_df=future)
    pd.testing.assert_frame_equal(covariates, expected, rtol=1e-5, atol=1e-5)
    assert {m["id"] for m in models} == {m["id"] for m in sdk.models()}


def readme_examples() -> list[str]:
    """The Python blocks of the README's "Python client" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def run_example(code: str, serve_url: str) -> str:
    """A README block run as a user runs it: a fresh interpreter in the repository root."""
    env = {
        **os.environ,
        "SAPHENEIA_URL": serve_url,
        "SAPHENEIA_API_KEY": API_KEY,
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_example_runs_as_written(serve_url: str) -> None:
    output = run_example(readme_examples()[0], serve_url)
    assert "air_passengers" in output and "q-0.9" in output
    assert "404 model_not_found" in output


def test_a_submitted_job_equals_the_synchronous_forecast(
    sdk: Client, client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = air({"a": 1.0, "b": 2.0})
    job = sdk.submit(frame, 6, model="auto-ets", quantiles=[0.1, 0.9])
    state = job.wait(progress=True, poll_s=0.5, timeout_s=120)
    assert state.status == "succeeded" and state.series_done == state.series_total == 2
    assert "2/2 series" in capsys.readouterr().err
    result = job.result()
    expected = sdk.forecast(frame, 6, model="auto-ets", quantiles=[0.1, 0.9])
    pd.testing.assert_frame_equal(
        result[list(expected.columns)].reset_index(drop=True), expected, check_dtype=False
    )


def test_the_readme_job_example_runs_as_written(serve_url: str, client: httpx.Client) -> None:
    assert "rows" in run_example(readme_examples()[1], serve_url)
