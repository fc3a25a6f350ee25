"""The earlier product's (v1) ``/inference`` answer, built from the same arrays as the point forecast."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

# quantile_indices: 0 is the mean, 1..9 are Q10..Q90 (DECILES).
from sapheneia.tasks import DECILES, ForecastResult, ForecastTask


def quantile_rows(result: ForecastResult) -> np.ndarray:
    """``(horizon, 10)``: the mean then Q10..Q90 per step, the earlier product's layout."""
    columns = [result.mean] + [result.quantiles[level] for level in DECILES]
    return np.column_stack(columns)


def quantile_bands(result: ForecastResult, indices: list[int]) -> dict[str, Any]:
    """Bands between consecutive selected quantiles: [1, 3, 5] gives Q10–Q30 and Q30–Q50.

    Each band's edges are exactly the quantile columns its label names (the earlier product's were
    shifted by one); the mean (index 0) is not a quantile and makes no band.
    """
    selected = sorted({i for i in indices if i > 0})
    bands: dict[str, Any] = {}
    for band, (low, high) in enumerate(itertools.pairwise(selected)):
        bands[f"quantile_band_{band}_lower"] = result.quantiles[DECILES[low - 1]].tolist()
        bands[f"quantile_band_{band}_upper"] = result.quantiles[DECILES[high - 1]].tolist()
        bands[f"quantile_band_{band}_label"] = f"Q{low * 10}–Q{high * 10}"
    return bands


def inference_response(
    task: ForecastTask,
    result: ForecastResult,
    *,
    target_name: str,
    indices: list[int],
    use_quantiles: bool,
    model_id: str,
    total_seconds: float,
    request_id: str,
    api_version: str,
) -> dict[str, Any]:
    prediction: dict[str, Any] = {
        "point_forecast": [result.mean.tolist()],
        "method": "covariates_enhanced" if result.covariates_used else "basic",
        "metadata": {
            "input_series_count": 1,
            "forecast_length": task.horizon,
            "covariates_used": result.covariates_used,
            "quantiles_available": use_quantiles,
            "interpolated_quantiles": list(result.interpolated),
        },
    }
    if use_quantiles:
        prediction["quantile_forecast"] = [quantile_rows(result).tolist()]
        prediction["quantile_bands"] = quantile_bands(result, indices)
    return {
        "prediction": prediction,
        "visualization_data": {
            "historical_data": task.context.tolist(),
            "dates_historical": [t.isoformat() for t in task.timestamps],
            "dates_future": [t.isoformat() for t in task.future_timestamps],
            "target_name": target_name,
            "actual_future": [],
        },
        "execution_metadata": {
            "total_time_seconds": round(total_seconds, 4),
            "execution_time_seconds": result.metadata.get("model_seconds"),
            "batch_size": result.metadata.get("batch_size"),
            "model": model_id,
            "model_version": model_id,
            "api_version": api_version,
            "request_id": request_id,
        },
    }
