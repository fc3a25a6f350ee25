"""One caller's data never reaches another caller's forecast, nor a backtest window's future.

Models that fit across series (TimesFM's XReg covariate regression, Chronos-2 cross-learning) fit
within one batch group. The group is drawn by the server per request (per window in a backtest);
the caller's ``X-Request-ID`` is only logged and echoed, so two callers who send the same one share
nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.deployments.conftest import API_KEY
from tests.deployments.served_models import TIMESFM_2P5
from tests.deployments.test_served_timesfm import covariate_request, forecast_request, served

RTOL = ATOL = 1e-5


async def send_with_id(url: str, requests: list[dict[str, Any]], request_id: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Request-ID": request_id}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        responses = await asyncio.gather(
            *(client.post("/api/v2/forecast", json=r) for r in requests)
        )
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == request_id
    return [r.json() for r in responses]


@pytest.mark.parametrize("model_id", ["timesfm-2.0", TIMESFM_2P5])
def test_two_callers_with_the_same_request_id_get_their_solo_results(
    serve_url: str, client: httpx.Client, model_id: str
) -> None:
    mine, theirs = covariate_request(model_id, caller=0), covariate_request(model_id, caller=1)
    solo_mine = client.post("/api/v2/forecast", json=mine).json()
    solo_theirs = client.post("/api/v2/forecast", json=theirs).json()
    assert solo_mine["metadata"]["covariates_used"] is True

    # Both at once, both claiming the same id: one XReg fit over both series would change each.
    for _ in range(3):  # a few tries, so that the two really meet in one batch at least once
        together = asyncio.run(send_with_id(serve_url, [mine, theirs] * 2, "same-id"))
        if max(b["metadata"]["batch_sizes"][0] for b in together) > 1:
            break
    assert max(b["metadata"]["batch_sizes"][0] for b in together) > 1
    for body, solo in zip(together, [solo_mine, solo_theirs] * 2, strict=True):
        np.testing.assert_allclose(served(body), served(solo), rtol=RTOL, atol=ATOL)


HORIZON, WINDOWS, LENGTH = 8, 2, 72
LEVELS = (0.1, 0.5, 0.9)


def history() -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    rng = np.random.default_rng(7)
    promo = rng.normal(size=LENGTH)
    y = 20 + np.sin(np.arange(LENGTH) / 3) * 5 + 4 * promo + rng.normal(size=LENGTH)
    return y, promo, pd.date_range("2024-01-01", periods=LENGTH, freq="D")


@pytest.mark.parametrize("model_id", [TIMESFM_2P5, "chronos-2"])
def test_a_backtest_window_equals_a_forecast_on_the_history_cut_at_its_cutoff(
    client: httpx.Client, model_id: str
) -> None:
    y, promo, stamps = history()
    rows = [
        {"unique_id": "s", "ds": f"{t:%Y-%m-%d}", "y": float(v), "promo": float(p)}
        for t, v, p in zip(stamps, y, promo, strict=True)
    ]
    backtest = client.post(
        "/api/v2/backtest",
        json={
            "models": [model_id],
            "horizon": HORIZON,
            "n_windows": WINDOWS,
            "quantiles": list(LEVELS),
            "data": rows,
            "covariates": {"promo": "dynamic_numerical"},
        },
    )
    assert backtest.status_code == 200, backtest.text
    forecasts = pd.DataFrame(backtest.json()["forecasts"])
    columns = ["mean", *(f"q-{level:g}" for level in LEVELS)]
    for window in range(WINDOWS):
        cut = LENGTH - HORIZON * (WINDOWS - window)
        # The history up to the cutoff, and the covariate's known future for the horizon only.
        request = forecast_request(
            model_id,
            "s",
            y[:cut],
            {"promo": promo[: cut + HORIZON]},
            horizon=HORIZON,
            quantiles=LEVELS,
        )
        alone = client.post("/api/v2/forecast", json=request)
        assert alone.status_code == 200, alone.text
        assert alone.json()["metadata"]["covariates_used"] is True
        expected = pd.DataFrame(alone.json()["forecast"])[columns].to_numpy(dtype=float)
        in_window = forecasts[forecasts["cutoff"].str.startswith(f"{stamps[cut - 1]:%Y-%m-%d}")]
        assert len(in_window) == HORIZON, forecasts["cutoff"].unique()
        np.testing.assert_allclose(
            in_window[columns].to_numpy(dtype=float), expected, rtol=RTOL, atol=ATOL
        )
