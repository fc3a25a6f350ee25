"""Request bodies, quantile parsing, snippets and escaping: no browser, no service."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest

from frontend.columns import ColumnMapping
from frontend.export import curl_snippet, forecast_table, python_snippet, safe_stem, write_csv
from frontend.payloads import (
    anomalies_request,
    backtest_request,
    forecast_request,
    job_request,
    parse_quantiles,
    quantile_columns,
    records,
)
from frontend.plots import bands
from frontend.text import error, plain

MAPPING = ColumnMapping(
    timestamp="date",
    target="sales",
    series_id="store",
    covariates={"price": "dynamic_numerical", "note": "ignore"},
)


def test_quantiles_parsed_sorted_and_deduplicated() -> None:
    assert parse_quantiles("0.9, 0.1 0.5;0.1") == [0.1, 0.5, 0.9]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "enter at least one quantile level"),
        ("0.1, ten", "quantile level 'ten' is not a number"),
        ("0.1, 1.5", "quantile level 1.5 must be between 0 and 1"),
        ("0", "quantile level 0 must be between 0 and 1"),
    ],
)
def test_bad_quantiles_say_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quantiles(text)


def test_forecast_request_with_covariates() -> None:
    body = forecast_request(
        "auto-ets",
        MAPPING,
        horizon=6,
        quantiles=[0.1, 0.9],
        context_length=48,
        freq=" MS ",
        use_covariates=True,
    )
    assert body == {
        "model": "auto-ets",
        "horizon": 6,
        "quantiles": [0.1, 0.9],
        "id_column": "store",
        "timestamp_column": "date",
        "target_column": "sales",
        "covariates": {"price": "dynamic_numerical"},
        "context_length": 48,
        "freq": "MS",
    }


def test_forecast_request_one_series_without_covariates() -> None:
    mapping = ColumnMapping(timestamp="ds", target="y", covariates={"price": "dynamic_numerical"})
    body = forecast_request("seasonal-naive", mapping, horizon=3, quantiles=[0.5])
    assert body == {
        "model": "seasonal-naive",
        "horizon": 3,
        "quantiles": [0.5],
        "id_column": "unique_id",
        "timestamp_column": "ds",
        "target_column": "y",
    }


def test_backtest_request_carries_json_safe_rows() -> None:
    frame = pd.DataFrame(
        {
            "store": ["a", "a"],
            "date": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "sales": [1.0, None],
        }
    )
    body = backtest_request(
        ["auto-ets", "seasonal-naive"], MAPPING, frame,
        horizon=2, n_windows=3, step=None, quantiles=[0.1, 0.9],
    )  # fmt: skip
    assert body["models"] == ["auto-ets", "seasonal-naive"]
    assert (body["n_windows"], "step" in body, "covariates" in body) == (3, False, False)
    assert body["data"][1] == {"store": "a", "date": "2024-02-01T00:00:00.000", "sales": None}
    json.dumps(body, allow_nan=False)
    assert records(frame)[0]["sales"] == 1.0


def test_quantile_columns_and_bands() -> None:
    frame = pd.DataFrame(columns=["ds", "mean", "q-0.1", "q-0.3", "q-0.5", "q-0.7", "q-0.9"])
    assert list(quantile_columns(frame)) == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert bands([0.1, 0.3, 0.5, 0.7, 0.9]) == [(0.1, 0.9), (0.3, 0.7)]
    assert bands([0.1, 0.5, 0.8]) == []


def test_snippets_use_the_placeholder_and_quote_names() -> None:
    body = forecast_request("auto-ets", MAPPING, horizon=6, quantiles=[0.5])
    curl = curl_snippet("http://api:8000/", body, "it's mine.csv")
    assert "$SAPHENEIA_API_KEY" in curl
    words = shlex.split(curl.replace("\\\n", " "))
    assert "file=@it's mine.csv" in words
    request_part = next(w for w in words if w.startswith("request="))
    assert json.loads(request_part.removeprefix("request=")) == body
    assert "http://api:8000/api/v2/forecast" in words
    code = python_snippet("http://api:8000", body, "it's mine.csv", ["auto-ets", "theta"])
    compile(code, "<snippet>", "exec")
    assert "os.environ['SAPHENEIA_API_KEY']" in code and "['auto-ets', 'theta']" in code


def test_forecast_table_puts_the_model_first() -> None:
    one = pd.DataFrame({"unique_id": ["a"], "ds": ["2024-01-01"], "mean": [1.0]})
    table = forecast_table({"auto-ets": one, "theta": one, "empty": one.iloc[:0]})
    assert list(table.columns) == ["model", "unique_id", "ds", "mean"]
    assert table["model"].tolist() == ["auto-ets", "theta"]


def test_download_names_are_safe() -> None:
    assert safe_stem("../../<script>x.csv") == "script_x"
    assert safe_stem("...") == "data"


def test_markdown_text_is_literal() -> None:
    name = "<img src=x onerror=alert(1)>"
    assert plain(name) == "&lt;img src=x onerror=alert(1)&gt;"
    assert plain("a_b*c*") == r"a\_b\*c\*"
    assert error("bad <b>") == "**Error:** bad &lt;b&gt;"


def test_downloads_are_written_apart_and_old_ones_removed(tmp_path: Path) -> None:
    table = pd.DataFrame({"model": ["m"], "ds": ["2024-01-01"], "mean": [1.0]})
    first = Path(write_csv(table, "../sales data.parquet"))
    second = Path(write_csv(table, "sales.csv", keep_s=0))
    assert second.name == "sales-forecast.csv" and pd.read_csv(second).shape == (1, 3)
    assert not first.exists() and first.parent != second.parent


def test_forecast_request_asks_for_calibration_only_when_switched_on() -> None:
    body = forecast_request("auto", MAPPING, horizon=6, quantiles=[0.1, 0.9], calibrate=True)
    assert (body["model"], body["calibrate"]) == ("auto", True)
    assert "calibrate" not in forecast_request("auto", MAPPING, horizon=6, quantiles=[0.5])


def test_anomalies_request_sends_level_and_no_quantiles() -> None:
    body = anomalies_request("seasonal-naive", MAPPING, level=95, last_n=12, freq="MS")
    assert body == {
        "model": "seasonal-naive",
        "level": 95.0,
        "last_n": 12,
        "id_column": "store",
        "timestamp_column": "date",
        "target_column": "sales",
        "freq": "MS",
    }
    # 0 (the form's "as many as the server allows") leaves last_n to the server.
    assert "last_n" not in anomalies_request("m", MAPPING, level=99, last_n=0)
    with pytest.raises(ValueError, match="percentage between 0 and 100; got 100"):
        anomalies_request("m", MAPPING, level=100)


def test_job_requests_for_a_forecast_and_a_backtest() -> None:
    forecast = job_request(
        "forecast", ["auto-ets"], ("", "ds", "y"), horizon=6, quantiles=[0.5],
        source=" big.parquet ",
    )  # fmt: skip
    assert forecast == {
        "kind": "forecast",
        "horizon": 6,
        "quantiles": [0.5],
        "id_column": "unique_id",
        "timestamp_column": "ds",
        "target_column": "y",
        "model": "auto-ets",
        "source": "big.parquet",
    }
    backtest = job_request(
        "backtest", ["a", "b"], ("store", "date", "sales"), horizon=3, quantiles=[0.1],
        n_windows=4,
    )  # fmt: skip
    assert (backtest["models"], backtest["n_windows"], backtest["id_column"]) == (
        ["a", "b"], 4, "store",
    )  # fmt: skip
    assert "source" not in backtest and "model" not in backtest  # an upload: the file is the rows


@pytest.mark.parametrize(
    ("kind", "models", "columns", "message"),
    [
        ("forecast", [], ("", "ds", "y"), "pick a model for the job"),
        ("forecast", ["a", "b"], ("", "ds", "y"), "a forecast job runs one model"),
        ("forecast", ["a"], ("", " ", "y"), "name the timestamp and the target column"),
        ("cleanup", ["a"], ("", "ds", "y"), "a job is a forecast or a backtest, not 'cleanup'"),
    ],
)
def test_job_request_mistakes(
    kind: str, models: list[str], columns: tuple[str, str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        job_request(kind, models, columns, horizon=3, quantiles=[0.5])


def test_forecast_table_keeps_the_model_auto_chose() -> None:
    chosen = pd.DataFrame({"unique_id": ["a", "b"], "model": ["auto-ets", "theta"], "mean": 1.0})
    table = forecast_table({"auto": chosen})
    assert list(table.columns) == ["model", "unique_id", "chosen_model", "mean"]
    assert table["model"].tolist() == ["auto", "auto"]
    assert table["chosen_model"].tolist() == ["auto-ets", "theta"]
