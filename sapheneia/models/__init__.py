"""Model adapters: one file per model family, all implementing ``ModelAdapter``."""

from sapheneia.models.base import Capabilities, ModelAdapter, NativeForecast
from sapheneia.models.registry import ADAPTERS, adapter_class, create_adapter, validate_config

__all__ = [
    "ADAPTERS",
    "Capabilities",
    "ModelAdapter",
    "NativeForecast",
    "adapter_class",
    "create_adapter",
    "validate_config",
]
