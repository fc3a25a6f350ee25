"""Sapheneia: forecasting with time-series foundation models and statistical forecasters.

A plain library (it never imports Ray): the data contract, model adapters, evaluation. The Ray Serve
deployments in ``deployments/`` are built on top of it.
"""

from typing import TYPE_CHECKING, Any

from sapheneia.config import ModelConfig
from sapheneia.errors import (
    DataError,
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    SapheneiaError,
)
from sapheneia.tasks import ForecastResult, ForecastTask

if TYPE_CHECKING:
    from sapheneia.client import AsyncClient, Client

__version__ = "3.0.0"

__all__ = [
    "AsyncClient",
    "Client",
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


def __getattr__(name: str) -> Any:
    """``Client`` and ``AsyncClient`` are imported on first use: ``import sapheneia`` stays light
    (no ``httpx``) for the servers and workers that never call the API."""
    if name in ("Client", "AsyncClient"):
        import sapheneia.client

        return getattr(sapheneia.client, name)
    raise AttributeError(f"module 'sapheneia' has no attribute {name!r}")
