"""Forecast and backtest read their table the same way: inline rows, a source, or an upload."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from tests.deployments.conftest import assert_error

MONTHS = pd.date_range("2022-01-01", periods=30, freq="MS")
ROWS = [
    {"unique_id": uid, "ds": f"{t:%Y-%m-%d}", "y": float(10 + i + (5 if uid == "b" else 0))}
    for uid in ("a", "b")
    for i, t in enumerate(MONTHS)
]
CSV = pd.DataFrame(ROWS).to_csv(index=False).encode()

ROUTES = {
    "/api/v2/forecast": {"model": "auto-ets", "horizon": 3},
    "/api/v2/backtest": {"models": ["seasonal-naive", "auto-ets"], "horizon": 3, "n_windows": 2},
}


@pytest.mark.parametrize("path", list(ROUTES))
def test_an_upload_answers_as_the_same_rows_sent_inline(local: httpx.Client, path: str) -> None:
    fields = ROUTES[path]
    inline = local.post(path, json={**fields, "data": ROWS})
    upload = local.post(
        path, files={"file": ("series.csv", CSV)}, data={"request": json.dumps(fields)}
    )
    assert inline.status_code == upload.status_code == 200, upload.text
    key = "forecast" if path.endswith("forecast") else "forecasts"
    assert upload.json()[key] == inline.json()[key]


@pytest.mark.parametrize("path", list(ROUTES))
def test_the_same_mistake_gets_the_same_answer_on_both(local: httpx.Client, path: str) -> None:
    fields = {**ROUTES[path], "horizon": 0}
    for response in (
        local.post(path, json={**fields, "data": ROWS}),
        local.post(path, files={"file": ("s.csv", CSV)}, data={"request": json.dumps(fields)}),
    ):
        assert "horizon" in assert_error(response, 400, "invalid_input")["message"]


def test_an_upload_with_rows_in_its_request_part_is_refused(local: httpx.Client) -> None:
    response = local.post(
        "/api/v2/backtest",
        files={"file": ("s.csv", CSV)},
        data={"request": json.dumps({**ROUTES["/api/v2/backtest"], "data": ROWS})},
    )
    assert "'file' part" in assert_error(response, 400, "invalid_input")["message"]


def test_a_backtest_whose_answer_would_be_huge_is_refused(local: httpx.Client) -> None:
    from sapheneia.data import DataLimits, load_table
    from sapheneia.errors import LimitExceeded
    from sapheneia.evaluation import plan_backtest

    frame = load_table(ROWS, DataLimits(data_dir="."))
    small = DataLimits(data_dir=".", max_output_cells=100)
    from sapheneia.data import ColumnRoles

    # 2 windows × 3 models × 2 series × 3 steps × 4 columns = 144 values
    with pytest.raises(LimitExceeded, match="SAPHENEIA_MAX_OUTPUT_CELLS"):
        plan_backtest(frame, ColumnRoles(), horizon=3, n_windows=2, models=3, limits=small)
    assert plan_backtest(frame, ColumnRoles(), horizon=3, n_windows=2, models=1, limits=small)


def strict_json(text: str) -> object:
    """RFC 8259: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in the answer")

    return json.loads(text, parse_constant=refuse)


def test_an_undefined_metric_is_null_with_the_reason(local: httpx.Client) -> None:
    constant = [
        {"unique_id": "flat", "ds": f"{t:%Y-%m-%d}", "y": 5.0}
        for t in pd.date_range("2022-01-01", periods=24, freq="MS")
    ]
    response = local.post(
        "/api/v2/backtest",
        json={"models": ["seasonal-naive"], "horizon": 3, "n_windows": 2, "data": constant},
    )
    assert response.status_code == 200, response.text
    (metrics,) = strict_json(response.text)["metrics"]  # type: ignore[index]
    assert metrics["MASE"] is None and "constant" in metrics["undefined"]["MASE"]
    assert metrics["sMAPE"] == 0.0


def test_every_answer_says_which_model_adapter_and_revision_answered(local: httpx.Client) -> None:
    fields = ROUTES["/api/v2/forecast"]
    body = local.post("/api/v2/forecast", json={**fields, "data": ROWS})
    assert body.json()["metadata"]["model_version"] == {
        "id": "auto-ets",
        "adapter": "statsforecast",
        "checkpoint": "statistical",
        "revision": None,
    }
    csv = local.post("/api/v2/forecast", json={**fields, "data": ROWS, "format": "csv"})
    assert csv.headers["x-model-id"] == "auto-ets"
    assert csv.headers["x-model-adapter"] == "statsforecast"
    backtest = local.post("/api/v2/backtest", json={**ROUTES["/api/v2/backtest"], "data": ROWS})
    assert set(backtest.json()["metadata"]["models"]) == {"seasonal-naive", "auto-ets"}
