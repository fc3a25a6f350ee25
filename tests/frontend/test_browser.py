"""The web UI in headless Chromium against the real service (API and UI on one Ray Serve)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.frontend.conftest import MODELS, OUTPUT_DIR, UPLOAD_CAP, Service, sign_in
from tests.frontend.pages import DRAWN, SLOW, expect, traces, two_routes, upload

pytestmark = pytest.mark.cluster

XSS = "<img src=x onerror=alert(1)>"
# Gradio strips <>:"/\|?*`$!{} from uploaded file names; these survive and mean something to
# Markdown (a link, an entity, emphasis) unless escaped.
ODD_FILE = "[x](y) &amp; _z_.csv"


def plot_traces(page: Any) -> list[dict[str, Any]]:
    return traces(page, "forecast-plot")


def test_upload_forecast_plot_download(page: Any, service: Service, tmp_path: Path) -> None:
    upload(page, two_routes(tmp_path / "routes.csv"))
    expect(page.locator("#timestamp input")).to_have_value("month")
    expect(page.locator("#series-id input")).to_have_value("route")
    expect(page.locator("#target input")).to_have_value("passengers")

    page.get_by_role("tab", name="Forecast").click()
    expect(page.locator("#models")).to_contain_text("timesfm-2.5 (unavailable)")
    expect(page.locator("#models-table")).to_contain_text("sapheneia pull")
    for model in MODELS[1:]:  # the first ready model is picked already
        page.locator("#models label", has_text=model).click()
    expect(page.locator("#models input:checked")).to_have_count(len(MODELS))
    page.locator("#run-forecast").click()
    expect(page.locator("#forecast-message")).to_contain_text("Forecast done", timeout=SLOW)

    traces = plot_traces(page)
    names = [t["name"] for t in traces]
    assert names[0] == "history" and traces[0]["points"] == 48
    for model in MODELS:
        assert f"{model} median" in names
        bands = [t for t in traces if t["name"] in (f"{model} 10–90%", f"{model} 30–70%")]
        assert [t["fill"] for t in bands] == ["tonexty", "tonexty"]
        assert all(t["points"] == 12 for t in bands)

    with page.expect_download() as download:
        page.locator("#download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    table = pd.read_csv(saved)
    assert saved.name == "routes-forecast.csv"
    assert len(table) == len(MODELS) * 2 * 12  # models x series x horizon
    assert {"model", "route", "ds", "q-0.1", "q-0.9"} <= set(table.columns)
    assert sorted(table["model"].unique()) == sorted(MODELS)
    assert sorted(table["route"].unique()) == ["north", "south"]

    page.get_by_text("Copy as API request").click()
    curl = page.locator("#curl").inner_text()
    assert "$SAPHENEIA_API_KEY" in curl and "file=@routes.csv" in curl
    assert service.key not in curl + page.locator("#python").inner_text()

    calls = service.recorder.calls
    assert [(m, p) for m, p, _ in calls] == [("POST", "/api/v2/forecast")] * len(MODELS)
    assert {auth for _, _, auth in calls} == {f"Bearer {service.key}"}
    # The key went to the API from the server; the page itself never holds it.
    assert service.key not in page.content()
    assert service.key not in page.evaluate(
        "() => JSON.stringify([window.gradio_config, {...localStorage}, {...sessionStorage}])"
    )

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "forecast.png"), full_page=True)
    assert page.dialogs == []


def test_column_and_file_names_are_shown_as_text(
    page: Any, service: Service, tmp_path: Path
) -> None:
    upload(page, two_routes(tmp_path / ODD_FILE, {XSS: 1.0}))
    expect(page.locator("#preview").get_by_text(XSS)).to_be_visible()
    expect(page.locator("#data-message")).to_contain_text(f"Loaded {ODD_FILE}: 96 rows")
    assert page.locator("#data-message a").count() == 0
    expect(page.locator("#static_numerical")).to_contain_text(XSS)  # constant per series
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "column-names.png"), full_page=True)
    assert page.locator("img[src='x']").count() == 0
    assert page.dialogs == []


def test_without_a_key_the_page_is_only_the_login_form(
    signed_out_page: Any, service: Service
) -> None:
    page = signed_out_page
    expect(page.get_by_text("Sign in with your Sapheneia API key as the password")).to_be_visible()
    expect(page.locator("input[type=password]")).to_be_visible()
    for widget in (
        "#upload", "#sample", "#run-forecast", "#run-backtest", "#status", "#run-anomalies",
        "#job-upload", "#submit-job", "#jobs-table",
    ):  # fmt: skip
        expect(page.locator(widget)).to_have_count(0)
    assert service.recorder.calls == []


def test_wrong_key_is_refused(signed_out_page: Any, service: Service) -> None:
    page = signed_out_page
    sign_in(page, "not-the-key")
    expect(page.get_by_text("Incorrect Credentials", exact=False)).to_be_visible(timeout=30_000)
    expect(page.locator("#upload")).to_have_count(0)
    assert "Traceback" not in page.content()
    assert service.recorder.calls == [("GET", "/api/v2/models", "Bearer not-the-key")]


def test_sign_out_ends_the_session(page: Any, service: Service) -> None:
    page.locator("#sign-out").click()
    page.wait_for_selector("input[type=password]", timeout=30_000)
    expect(page.locator("#upload")).to_have_count(0)
    page.reload()
    page.wait_for_selector("input[type=password]", timeout=30_000)
    expect(page.locator("#upload")).to_have_count(0)


def test_an_upload_over_the_cap_is_refused(page: Any, service: Service, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"ds,y\n" + b"2020-01-01,1\n" * (UPLOAD_CAP // 13 + 1))
    assert big.stat().st_size > UPLOAD_CAP
    before = service.stored_files()
    page.locator("#upload input[type=file]").set_input_files(str(big))
    expect(page.get_by_text("exceed the maximum allowed size", exact=False)).to_be_visible(
        timeout=30_000
    )
    expect(page.locator("#data-message")).not_to_contain_text("Loaded")
    assert service.stored_files() == before


def test_sample_dataset(page: Any) -> None:
    page.locator("#sample input").click()
    page.get_by_role("option", name="air_passengers: Monthly airline passengers").click()
    expect(page.locator("#data-message")).to_contain_text(
        "Loaded air_passengers.csv: 144 rows", timeout=30_000
    )
    expect(page.locator("#data-report")).to_contain_text("frequency: ME")
    expect(page.locator("#target input")).to_have_value("y")


def test_backtest_tab(page: Any, service: Service, tmp_path: Path) -> None:
    upload(page, two_routes(tmp_path / "routes.csv"))
    page.get_by_role("tab", name="Backtest").click()
    page.locator("#backtest-models label", has_text=MODELS[-1]).click()
    page.locator("#run-backtest").click()
    expect(page.locator("#backtest-message")).to_contain_text(
        f"Backtest done: {len(MODELS)} models", timeout=SLOW
    )
    metrics = page.locator("#metrics")
    for text in ("MASE", "WQL", "coverage_80", *MODELS):
        expect(metrics).to_contain_text(text)
    page.wait_for_function(
        "() => document.querySelector('#backtest-plot .js-plotly-plot')?.data?.length > 0",
        timeout=DRAWN,
    )
    names = page.evaluate(
        "() => document.querySelector('#backtest-plot .js-plotly-plot').data.map(t => t.name)"
    )
    assert names == ["actual", *sorted(MODELS)]
    assert ("POST", "/api/v2/backtest") in [(m, p) for m, p, _ in service.recorder.calls]
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "backtest.png"), full_page=True)
