"""Sapheneia: forecasting with time-series foundation models and statistical forecasters.

A plain library (it never imports Ray): the data contract, model adapters, evaluation. The Ray Serve
deployments in ``deployments/`` are built on top of it.
"""

from sapheneia.config import ModelConfig
from sapheneia.errors import (
    DataError,
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    SapheneiaError,
)
from sapheneia.tasks import ForecastResult, ForecastTask

__version__ = "3.0.0"

__all__ = [
    "DataError",
    "ForecastResult",
    "ForecastTask",
    "InvalidInput",
    "ModelConfig",
    "ModelNotFound",
    "ModelUnavailable",
    "SapheneiaError",
    "__version__",
]
