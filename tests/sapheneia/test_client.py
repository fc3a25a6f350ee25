"""``sapheneia.Client`` against ``httpx.MockTransport``: errors, retries, splitting, requests."""

from __future__ import annotations

import inspect
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from sapheneia import Client, errors
from sapheneia.client import ERROR_CLASSES, RetryPolicy, SapheneiaAPIError
from tests.sapheneia.fake_api import FakeForecastAPI, daily, error, upload

ROOT = Path(__file__).resolve().parents[2]
URL = "http://sapheneia.test"
KEY = "key-0123456789abcdef"

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, sleeps: list[float] | None = None, **options: object) -> Client:
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return Client(URL, KEY, transport=httpx.MockTransport(handler), sleep=record, **options)  # type: ignore[arg-type]


def answers(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``responses`` in turn, and the requests it saw."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[len(seen) - 1]

    return handle, seen


MODELS = httpx.Response(200, json={"models": [{"id": "auto-ets", "status": "ready"}]})


def test_import_sapheneia_stays_light_and_exports_both_clients() -> None:
    code = (
        "import sys, sapheneia; assert 'httpx' not in sys.modules and 'ray' not in sys.modules; "
        "from sapheneia import Client, AsyncClient; assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_every_server_error_code_has_a_class_that_is_also_the_server_class() -> None:
    declared = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.SapheneiaError) and cls is not errors.SapheneiaError
    ]
    assert len(declared) >= 25
    for cls in declared:
        mirrored = ERROR_CLASSES[cls.code]
        assert issubclass(mirrored, cls) and issubclass(mirrored, SapheneiaAPIError)
        assert (mirrored.__name__, mirrored.status, mirrored.code) == (
            cls.__name__,
            cls.status,
            cls.code,
        )
    # The families hold on the client side too.
    assert issubclass(ERROR_CLASSES["unknown_column"], ERROR_CLASSES["data_error"])
    assert issubclass(ERROR_CLASSES["data_error"], ERROR_CLASSES["invalid_input"])
    assert {"internal_error", "not_found", "method_not_allowed"} <= set(ERROR_CLASSES)


def test_an_error_answer_raises_its_class_with_status_code_message_and_request_id() -> None:
    handle, _ = answers(error(404, "model_not_found", "no model 'nope'; served: auto-ets"))
    with client(handle) as c, pytest.raises(errors.ModelNotFound) as raised:
        c.models()
    problem = raised.value
    assert isinstance(problem, SapheneiaAPIError)
    assert (problem.status, problem.code, problem.request_id) == (404, "model_not_found", "req-1")
    assert problem.message == "no model 'nope'; served: auto-ets"
    assert str(problem) == "404 model_not_found: no model 'nope'; served: auto-ets, request req-1"


def test_a_data_error_is_caught_as_the_librarys_family() -> None:
    handle, _ = answers(error(422, "unknown_column", "no column 'y'; columns: ds, value"))
    with client(handle) as c, pytest.raises(errors.DataError) as raised:
        c.models()
    assert type(raised.value).__name__ == "UnknownColumn"


def test_an_error_without_the_error_shape_keeps_status_and_text() -> None:
    handle, _ = answers(httpx.Response(502, text="Bad Gateway"))
    with client(handle) as c, pytest.raises(SapheneiaAPIError) as raised:
        c.models()
    assert (raised.value.status, raised.value.code, raised.value.message) == (
        502,
        "http_502",
        "Bad Gateway",
    )


def test_retries_wait_what_retry_after_asks() -> None:
    handle, seen = answers(
        error(503, "model_unavailable", "loading", **{"Retry-After": "7"}),
        error(429, "rate_limited", "slow down", **{"Retry-After": "2"}),
        MODELS,
    )
    sleeps: list[float] = []
    with client(handle, sleeps) as c:
        assert c.models() == [{"id": "auto-ets", "status": "ready"}]
    assert sleeps == [7.0, 2.0]
    assert len(seen) == 3
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in seen)


def test_retry_after_as_an_http_date_is_honoured() -> None:
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=30)
    date = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    handle, _ = answers(httpx.Response(503, text="busy", headers={"Retry-After": date}), MODELS)
    sleeps: list[float] = []
    with client(handle, sleeps) as c:
        c.models()
    assert 25 < sleeps[0] <= 31


def test_without_retry_after_the_wait_doubles_up_to_the_cap() -> None:
    handle, _ = answers(*[httpx.Response(504, text="timeout")] * 4, MODELS)
    sleeps: list[float] = []
    with client(handle, sleeps, retry=RetryPolicy(backoff_s=0.5, max_backoff_s=1.5)) as c:
        c.models()
    assert sleeps == [0.5, 1.0, 1.5, 1.5]


def test_retries_stop_after_the_policys_count_with_the_last_error() -> None:
    handle, seen = answers(*[error(503, "model_unavailable", "no weights")] * 3)
    sleeps: list[float] = []
    policy = RetryPolicy(retries=2)
    with (
        client(handle, sleeps, retry=policy) as c,
        pytest.raises(errors.ModelUnavailable) as raised,
    ):
        c.models()
    assert len(seen) == 3 and len(sleeps) == 2
    assert raised.value.retry_after_s is None


@pytest.mark.parametrize("status", [400, 401, 413, 422, 500])
def test_other_errors_are_not_retried(status: int) -> None:
    handle, seen = answers(error(status, "invalid_input", "fix it"), MODELS)
    with client(handle) as c, pytest.raises(SapheneiaAPIError):
        c.models()
    assert len(seen) == 1


def test_forecast_sends_parquet_with_roles_and_future_covariate_rows() -> None:
    api = FakeForecastAPI()
    history = daily({"a": 1.0, "b": 5.0}, days=6).assign(promo=np.arange(12.0), kind="x")
    future = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "ds": pd.to_datetime(["2024-01-07", "2024-01-08"] * 2),
            "promo": [1.0, 0.0, 0.0, 1.0],
            "kind": ["x", "y", "x", "y"],
        }
    )
    with client(api) as c:
        forecast = c.forecast(history, 2, model="m", quantiles=[0.1, 0.9], X_df=future)
    ((fields, table),) = api.requests
    assert fields == {
        "id_column": "unique_id",
        "timestamp_column": "ds",
        "target_column": "y",
        "covariates": {"promo": "dynamic_numerical", "kind": "dynamic_categorical"},
        "model": "m",
        "horizon": 2,
        "quantiles": [0.1, 0.9],
    }
    assert len(table) == 16 and table["y"].isna().sum() == 4
    pd.testing.assert_frame_equal(
        table[table["y"].isna()].drop(columns="y").reset_index(drop=True), future
    )
    assert list(forecast.columns) == ["unique_id", "ds", "mean", "median"]
    assert forecast["ds"].dtype.kind == "M"
    assert forecast["mean"].tolist() == [7.0, 8.0, 11.0, 12.0]


def test_renamed_columns_and_explicit_roles_go_as_sent() -> None:
    api = FakeForecastAPI()
    frame = daily({"a": 1.0}).rename(columns={"unique_id": "shop", "ds": "day", "y": "sales"})
    frame["size"] = 3.0
    with client(api) as c:
        forecast = c.forecast(
            frame,
            1,
            model="m",
            id_col="shop",
            time_col="day",
            target_col="sales",
            covariates={"size": "static_numerical"},
        )
    fields, _ = api.requests[0]
    assert fields["covariates"] == {"size": "static_numerical"}
    assert (fields["id_column"], fields["timestamp_column"], fields["target_column"]) == (
        "shop",
        "day",
        "sales",
    )
    assert list(forecast.columns) == ["shop", "day", "mean", "median"]


@pytest.mark.parametrize(
    ("future", "problem"),
    [
        (pd.DataFrame({"unique_id": ["a"], "ds": ["2024-02-01"], "other": [1]}), "not in df"),
        (pd.DataFrame({"unique_id": ["a"], "promo": [1]}), "missing ['ds']"),
        (pd.DataFrame({"unique_id": ["a"], "ds": ["2024-02-01"], "y": [1]}), "drop 'y'"),
    ],
)
def test_a_malformed_X_df_says_what_to_fix(future: pd.DataFrame, problem: str) -> None:
    history = daily({"a": 1.0}).assign(promo=1.0)
    with client(FakeForecastAPI()) as c, pytest.raises(ValueError, match=re.escape(problem)):
        c.forecast(history, 1, model="m", X_df=future)


def ids(requests: list[tuple[dict, pd.DataFrame]]) -> list[list[str]]:
    return [sorted(table["unique_id"].astype(str).unique()) for _, table in requests]


def test_a_frame_over_the_series_cap_is_split_by_series_and_merged_in_order() -> None:
    # Ids out of order and numbers past 9: the server's order is the ids sorted as text.
    series = {f"s{i}": float(i) for i in (3, 11, 0, 7, 1, 10, 2, 5, 4, 6, 9, 8)}
    frame = daily(series).sample(frac=1.0, random_state=0)  # rows shuffled too
    whole, split = FakeForecastAPI(), FakeForecastAPI()
    with client(whole) as c:
        one = c.forecast(frame, 3, model="m")
    with client(split, max_series_per_request=5) as c:
        merged = c.forecast(frame, 3, model="m")
    assert len(whole.requests) == 1
    assert [len(s) for s in ids(split.requests)] == [5, 5, 2]
    assert [sid for chunk in ids(split.requests) for sid in chunk] == sorted(series)
    for _, table in split.requests:  # whole series in every request
        assert (table.groupby("unique_id").size() == 10).all()
    pd.testing.assert_frame_equal(merged, one)


def test_a_frame_over_the_byte_cap_is_split() -> None:
    frame = daily({f"s{i:02d}": float(i) for i in range(20)}, days=50)
    per_series = frame.memory_usage(deep=True, index=False).sum() / 20
    api = FakeForecastAPI()
    with client(api, max_request_bytes=int(per_series * 6.5)) as c:
        forecast = c.forecast(frame, 2, model="m")
    assert [len(s) for s in ids(api.requests)] == [6, 6, 6, 2]
    assert len(forecast) == 40


def test_future_rows_travel_with_their_series_when_split() -> None:
    history = daily({"a": 1.0, "b": 2.0, "c": 3.0}).assign(promo=0.0)
    future = pd.DataFrame(
        {"unique_id": ["c", "a", "b"], "ds": pd.to_datetime(["2024-01-11"] * 3), "promo": 1.0}
    )
    api = FakeForecastAPI()
    with client(api, max_series_per_request=1) as c:
        c.forecast(history, 1, model="m", X_df=future)
    for (_, table), sid in zip(api.requests, ["a", "b", "c"], strict=True):
        assert set(table["unique_id"]) == {sid} and len(table) == 11
        assert table["y"].isna().sum() == 1


def test_a_chunk_the_server_refuses_as_too_big_is_halved_until_it_fits() -> None:
    frame = daily({f"s{i}": float(i) for i in range(7)})
    api = FakeForecastAPI(max_series=2)
    with client(api) as c:
        forecast = c.forecast(frame, 1, model="m")
    sent = ids(api.requests)
    assert [len(s) for s in sent] == [7, 4, 2, 2, 3, 2, 1]  # refused chunks included
    assert forecast["unique_id"].tolist() == [f"s{i}" for i in range(7)]


def test_a_single_series_over_the_cap_raises_the_servers_error() -> None:
    api = FakeForecastAPI(max_series=0)
    with client(api) as c, pytest.raises(errors.LimitExceeded, match="the cap is 0"):
        c.forecast(daily({"a": 1.0, "b": 2.0}), 1, model="m")
    assert [len(s) for s in ids(api.requests)] == [2, 1]


def test_a_frame_without_an_id_column_is_one_request() -> None:
    answer = {"model": "m", "forecast": [{"ds": "2024-01-11", "mean": 1.0}], "metadata": {}}
    handle, seen = answers(httpx.Response(200, json=answer))
    with client(handle, max_series_per_request=1) as c:
        forecast = c.forecast(daily({"a": 1.0}).drop(columns="unique_id"), 1, model="m")
    assert len(seen) == 1 and forecast["ds"].tolist() == [pd.Timestamp("2024-01-11")]


def test_backtest_answers_metrics_and_forecasts_frames() -> None:
    answer = {
        "metrics": [{"model": "auto-ets", "MASE": 0.5}, {"model": "naive", "MASE": None}],
        "forecasts": [
            {
                "unique_id": "a",
                "cutoff": "2024-01-10T00:00:00",
                "ds": "2024-01-11T00:00:00",
                "y": 1.0,
            }
        ],
        "metadata": {"windows": 1},
    }
    handle, seen = answers(httpx.Response(200, json=answer))
    with client(handle) as c:
        result = c.backtest(daily({"a": 1.0}), 1, models=["auto-ets", "naive"], n_windows=1)
    fields, table = upload(seen[0])
    assert seen[0].url.path == "/api/v2/backtest"
    assert fields["models"] == ["auto-ets", "naive"] and fields["n_windows"] == 1
    assert "step" not in fields and len(table) == 10
    assert result.metrics["model"].tolist() == ["auto-ets", "naive"]
    assert result.forecasts["cutoff"].dtype.kind == "M" and result.metadata == {"windows": 1}


def test_submit_a_frame_then_wait_with_progress_and_read_the_parquet_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = daily({"a": 1.0}, days=2)
    buffer = io.BytesIO()
    output.to_parquet(buffer)
    handle, seen = answers(
        httpx.Response(202, json={"job_id": "j1", "status": "queued"}),
        httpx.Response(200, json={"job_id": "j1", "status": "queued", "progress": {}}),
        httpx.Response(
            200,
            json={
                "job_id": "j1",
                "status": "running",
                "progress": {"series_done": 1, "series_total": 2, "rows_written": 12},
            },
        ),
        httpx.Response(
            200,
            json={
                "job_id": "j1",
                "status": "succeeded",
                "progress": {"series_done": 2, "series_total": 2, "rows_written": 24},
            },
        ),
        httpx.Response(
            200,
            content=buffer.getvalue(),
            headers={"content-type": "application/vnd.apache.parquet"},
        ),
    )
    sleeps: list[float] = []
    with client(handle, sleeps) as c:
        job = c.submit(daily({"a": 1.0, "b": 2.0}), 12, model="auto-ets", quantiles=[0.5])
        assert job.job_id == "j1"
        state = job.wait(progress=True, poll_s=0.25)
        result = job.result()
    fields, table = upload(seen[0])
    assert (seen[0].method, seen[0].url.path) == ("POST", "/api/v2/jobs")
    assert fields["kind"] == "forecast" and fields["model"] == "auto-ets"
    assert fields["horizon"] == 12 and fields["quantiles"] == [0.5] and len(table) == 20
    assert [r.url.path for r in seen[1:]] == ["/api/v2/jobs/j1"] * 3 + ["/api/v2/jobs/j1/result"]
    assert sleeps == [0.25, 0.25]
    assert state.status == "succeeded" and state.finished and state.rows_written == 24
    stderr = capsys.readouterr().err
    assert "job j1: running, 1/2 series, 12 rows written" in stderr
    assert stderr.endswith("job j1: succeeded, 2/2 series, 24 rows written\n")
    pd.testing.assert_frame_equal(result, output)


def test_submit_a_source_sends_json_for_a_backtest_job() -> None:
    handle, seen = answers(httpx.Response(202, json={"job_id": "j2", "status": "queued"}))
    with client(handle) as c:
        c.submit("big/series.parquet", 6, kind="backtest", models=["auto-ets"], n_windows=2)
    body = json.loads(seen[0].content)
    assert body == {
        "kind": "backtest",
        "source": "big/series.parquet",
        "id_column": "unique_id",
        "timestamp_column": "ds",
        "target_column": "y",
        "covariates": {},
        "models": ["auto-ets"],
        "horizon": 6,
        "n_windows": 2,
    }


def test_submit_refuses_what_the_job_cannot_take() -> None:
    with client(answers()[0]) as c:
        with pytest.raises(ValueError, match="needs model="):
            c.submit(daily({"a": 1.0}), 1)
        with pytest.raises(ValueError, match=r"needs models=\[...\]"):
            c.submit(daily({"a": 1.0}), 1, kind="backtest")
        with pytest.raises(TypeError, match=r"unknown options for a forecast job: \['n_windows'\]"):
            c.submit(daily({"a": 1.0}), 1, model="m", n_windows=2)


def test_a_failed_job_raises_its_error_as_its_class() -> None:
    failed = {
        "job_id": "j3",
        "status": "failed",
        "progress": {"series_done": 0, "series_total": 5},
        "error": {
            "code": "series_too_short",
            "message": "series 'a' has 2 points",
            "request_id": "r9",
        },
    }
    handle, _ = answers(httpx.Response(200, json=failed))
    with client(handle) as c, pytest.raises(errors.SeriesTooShort) as raised:
        c.job("j3").wait()
    assert (raised.value.status, raised.value.message) == (422, "series 'a' has 2 points")


def test_wait_gives_up_after_its_timeout() -> None:
    running = httpx.Response(200, json={"job_id": "j4", "status": "running"})
    handle, _ = answers(running)
    with client(handle) as c, pytest.raises(TimeoutError, match="job j4: running"):
        c.job("j4").wait(timeout_s=0)


def test_cancel_deletes_the_job() -> None:
    handle, seen = answers(
        httpx.Response(204), httpx.Response(200, json={"job_id": "j5", "status": "cancelled"})
    )
    with client(handle) as c:
        state = c.job("j5").cancel()
    assert [r.method for r in seen] == ["DELETE", "GET"]
    assert state.status == "cancelled" and state.finished
