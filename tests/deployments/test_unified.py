"""``/api/v2``: many series per request, JSON rows or an uploaded file, JSON or CSV back."""

from __future__ import annotations

import io

import httpx
import pandas as pd
from statsforecast.utils import AirPassengersDF


def rows(series: dict[str, float]) -> list[dict[str, object]]:
    air = AirPassengersDF.tail(48)
    return [
        {"unique_id": name, "ds": ds.strftime("%Y-%m-%d"), "y": float(y) * scale}
        for name, scale in series.items()
        for ds, y in zip(air["ds"], air["y"], strict=True)
    ]


def test_several_series_in_one_request(client: httpx.Client) -> None:
    request = {
        "model": "seasonal-naive",
        "horizon": 6,
        "quantiles": [0.1, 0.5, 0.9],
        "data": rows({"a": 1.0, "b": 2.0, "c": 3.0}),
    }
    response = client.post("/api/v2/forecast", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    table = pd.DataFrame(body["forecast"])
    assert sorted(table["unique_id"].unique()) == ["a", "b", "c"]
    assert list(table.columns) == ["unique_id", "ds", "mean", "median", "q-0.1", "q-0.5", "q-0.9"]
    assert len(table) == 18
    # Seasonal naive repeats the last season: b is exactly twice a.
    a = table[table.unique_id == "a"]["mean"].to_numpy()
    b = table[table.unique_id == "b"]["mean"].to_numpy()
    assert (b == 2 * a).all()
    assert body["metadata"]["series_count"] == 3


def test_csv_upload_with_csv_answer(client: httpx.Client, data_dir) -> None:
    content = (data_dir / "two_series.csv").read_bytes()
    response = client.post(
        "/api/v2/forecast",
        files={"file": ("two_series.csv", content, "text/csv")},
        data={"request": '{"model": "auto-ets", "horizon": 12, "format": "csv"}'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(response.text))
    assert table.groupby("unique_id").size().to_dict() == {"air": 12, "air_x2": 12}


def test_parquet_upload(client: httpx.Client) -> None:
    buffer = io.BytesIO()
    pd.DataFrame(rows({"p": 1.0})).to_parquet(buffer)
    response = client.post(
        "/api/v2/forecast",
        files={"file": ("series.parquet", buffer.getvalue(), "application/octet-stream")},
        data={"request": '{"model": "seasonal-naive", "horizon": 3}'},
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["forecast"]) == 3


def test_source_path_and_renamed_columns(client: httpx.Client) -> None:
    request = {
        "model": "auto-theta",
        "horizon": 4,
        "source": "uploads/sample_data.csv",
        "id_column": "none",
        "timestamp_column": "date",
        "target_column": "passengers",
    }
    response = client.post("/api/v2/forecast", json=request)
    assert response.status_code == 200, response.text
    assert len(response.json()["forecast"]) == 4


def test_models_list_capabilities_and_status(client: httpx.Client) -> None:
    models = {m["id"]: m for m in client.get("/api/v2/models").json()["models"]}
    assert models["auto-ets"]["status"] == "ready"
    assert models["timesfm-2.5"]["status"] == "unavailable"
    assert "sapheneia pull" in models["timesfm-2.5"]["reason"]
    for entry in models.values():
        assert {"max_context", "max_horizon", "covariates", "licence"} <= set(entry["capabilities"])


def test_backtest_ranks_models_on_the_same_windows(client: httpx.Client) -> None:
    air = AirPassengersDF
    request = {
        "models": ["auto-ets", "seasonal-naive"],
        "horizon": 12,
        "n_windows": 3,
        "data": [
            {"unique_id": "air", "ds": ds.strftime("%Y-%m-%d"), "y": float(y)}
            for ds, y in zip(air["ds"], air["y"], strict=True)
        ],
    }
    response = client.post("/api/v2/backtest", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    metrics = {row["model"]: row for row in body["metrics"]}
    assert metrics["auto-ets"]["MASE"] < metrics["seasonal-naive"]["MASE"]
    assert {"MASE", "sMAPE", "WQL", "coverage_80"} <= set(metrics["auto-ets"])
    assert len(body["forecasts"]) == 2 * 3 * 12
    assert body["metadata"]["windows"] == 3
