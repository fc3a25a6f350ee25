"""The Forecast tab's auto / ensemble and calibrate, and the Anomalies tab, in headless Chromium
against the real service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.frontend.conftest import MODELS, OUTPUT_DIR, Service
from tests.frontend.pages import SLOW, expect, table_frame, traces, two_routes, upload

pytestmark = pytest.mark.cluster

SPIKE_AT = "2018-05-01"  # month 41 of route north


def with_a_spike(path: Path) -> Path:
    """Two noisy seasonal routes; north jumps far above its pattern for one month."""
    months = pd.date_range("2015-01-01", periods=48, freq="MS")
    rng = np.random.default_rng(3)
    frames = []
    for route, level in (("north", 100.0), ("south", 200.0)):
        y = level + 20 * np.sin(np.arange(48) * 2 * np.pi / 12) + rng.normal(0, 2, 48)
        frames.append(pd.DataFrame({"month": months, "route": route, "passengers": y}))
    frame = pd.concat(frames, ignore_index=True)
    spike = (frame["route"] == "north") & (frame["month"] == pd.Timestamp(SPIKE_AT))
    frame.loc[spike, "passengers"] += 150
    frame.assign(month=frame["month"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path


def forecast_tab(page: Any, path: Path) -> None:
    upload(page, path)
    page.get_by_role("tab", name="Forecast").click()
    expect(page.locator("#models")).to_contain_text("auto: the best model per series")


def test_auto_shows_the_model_chosen_per_series(
    page: Any, service: Service, tmp_path: Path
) -> None:
    forecast_tab(page, two_routes(tmp_path / "routes.csv"))
    page.get_by_label(MODELS[0], exact=True).uncheck()  # the model picked on connecting
    page.get_by_label("auto: the best model per series").check()
    expect(page.locator("#models input:checked")).to_have_count(1)
    page.locator("#run-forecast").click()
    expect(page.locator("#forecast-message")).to_contain_text("Forecast done: auto", timeout=SLOW)

    expect(page.locator("#selection")).to_be_visible()
    chosen = table_frame(page, "selection")
    assert list(chosen.columns[:3]) == ["request", "series", "chosen"]
    assert sorted(chosen["series"]) == ["north", "south"]
    assert set(chosen["request"]) == {"auto"}
    assert set(chosen["chosen"]) <= set(MODELS)
    assert set(chosen["runner-up"]) <= set(MODELS) and set(chosen["metric"]) == {"WQL"}
    # The chart names the model auto chose for the plotted series (the first, north).
    north = chosen.set_index("series").loc["north", "chosen"]
    names = [t["name"] for t in traces(page, "forecast-plot")]
    assert f"auto ({north}) median" in names
    expect(page.locator("#coverage")).to_be_hidden()

    calls = [(m, p) for m, p, _ in service.recorder.calls]
    assert calls == [("POST", "/api/v2/forecast")]
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "auto.png"), full_page=True)


def test_calibrate_shows_coverage_before_and_after(
    page: Any, service: Service, tmp_path: Path
) -> None:
    data = two_routes(tmp_path / "routes.csv")
    forecast_tab(page, data)
    page.locator("#calibrate input").check()
    page.locator("#run-forecast").click()
    expect(page.locator("#forecast-message")).to_contain_text(
        f"{MODELS[0]}: calibrated on", timeout=SLOW
    )
    expect(page.locator("#coverage")).to_be_visible()
    shown = table_frame(page, "coverage").set_index("what")
    assert list(shown.columns) == ["model", "nominal %", "before %", "after %"]
    assert {"80% interval", "40% interval", "q-0.1 (at or below)"} <= set(shown.index)

    # The same request straight to the API: the table shows its calibration block, in percent.
    request = {
        "model": MODELS[0], "horizon": 12, "quantiles": [0.1, 0.3, 0.5, 0.7, 0.9],
        "id_column": "route", "timestamp_column": "month", "target_column": "passengers",
        "calibrate": True,
    }  # fmt: skip
    answer = httpx.post(
        f"{service.api_url}/api/v2/forecast",
        headers={"Authorization": f"Bearer {service.key}"},
        files={"file": (data.name, data.read_bytes())},
        data={"request": json.dumps(request)},
        timeout=300,
    ).json()["calibration"]
    for interval in answer["intervals"]:
        row = shown.loc[f"{interval['level']:g}% interval"]
        assert float(row["before %"]) == pytest.approx(interval["before"] * 100, abs=0.06)
        assert float(row["after %"]) == pytest.approx(interval["after"] * 100, abs=0.06)
    sent = [p for m, p, _ in service.recorder.calls if m == "POST"]
    assert sent == ["/api/v2/forecast"]
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "calibrate.png"), full_page=True)


def test_anomalies_mark_the_injected_spike(page: Any, service: Service, tmp_path: Path) -> None:
    upload(page, with_a_spike(tmp_path / "spiky.csv"))
    page.get_by_role("tab", name="Anomalies").click()
    page.locator("#anomaly-model input").click()
    page.get_by_role("option", name="seasonal-naive", exact=True).click()
    page.locator("#run-anomalies").click()
    expect(page.locator("#anomalies-message")).to_contain_text(
        "Anomalies with seasonal-naive", timeout=SLOW
    )
    # The table lists the spike first: it is the most anomalous point.
    flagged = table_frame(page, "anomalies-table")
    assert list(flagged.columns) == ["series", "ds", "y", "lo", "hi", "score"]
    assert flagged.iloc[0][["series", "ds"]].tolist() == ["north", SPIKE_AT]
    assert float(flagged.iloc[0]["y"]) > float(flagged.iloc[0]["hi"])

    # On the chart of north (the first series), the spike is an anomaly marker.
    drawn = {t["name"]: t for t in traces(page, "anomalies-plot")}
    assert {"actual", "99% one-step interval", "one-step forecast", "anomaly"} <= set(drawn)
    marked = dict(zip(drawn["anomaly"]["x"], drawn["anomaly"]["y"], strict=True))
    spike_x = next(x for x in marked if str(x).startswith(SPIKE_AT))
    assert marked[spike_x] == pytest.approx(float(flagged.iloc[0]["y"]), abs=1e-3)
    assert drawn["actual"]["points"] == 48

    with page.expect_download() as download:
        page.locator("#anomalies-download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    tested = pd.read_csv(saved)
    assert saved.name == "spiky-anomalies.csv"
    assert {"route", "ds", "y", "lo", "hi", "anomaly", "score"} <= set(tested.columns)
    assert tested["anomaly"].sum() == len(flagged)
    assert [(m, p) for m, p, _ in service.recorder.calls] == [("POST", "/api/v2/anomalies")]
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "anomalies.png"), full_page=True)
