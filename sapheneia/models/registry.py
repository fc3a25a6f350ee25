"""Config name -> adapter class. Adapters are imported lazily, and no adapter module imports torch at
module level, so a server that serves only statistical models never imports torch."""

from __future__ import annotations

import importlib

from sapheneia.config import ModelConfig
from sapheneia.errors import InvalidInput
from sapheneia.models.base import ModelAdapter

ADAPTERS: dict[str, str] = {
    "statsforecast": "sapheneia.models.statistical:StatisticalAdapter",
    "timesfm-2.0": "sapheneia.models.timesfm_2p0:TimesFM20Adapter",
    "timesfm-2.5": "sapheneia.models.timesfm_2p5:TimesFM25Adapter",
    "timesfm-3.0": "sapheneia.models.timesfm_3p0:TimesFM30Adapter",
    "chronos-bolt": "sapheneia.models.chronos_bolt:ChronosBoltAdapter",
    "chronos-2": "sapheneia.models.chronos_2:Chronos2Adapter",
    "flowstate": "sapheneia.models.flowstate:FlowStateAdapter",
    "prophet": "sapheneia.models.prophet:ProphetAdapter",
}


def adapter_class(name: str) -> type[ModelAdapter]:
    """The adapter class for a registry name or an import path ``package.module:ClassName``."""
    path = ADAPTERS.get(name, name)
    module_name, _, class_name = path.partition(":")
    if not class_name:
        raise InvalidInput(
            f"unknown adapter '{name}': use one of {sorted(ADAPTERS)} or an import path "
            "'package.module:ClassName'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidInput(f"adapter '{name}' cannot be imported: {error}") from error
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
        raise InvalidInput(f"adapter '{name}' is not a ModelAdapter subclass")
    return cls


def create_adapter(config: ModelConfig) -> ModelAdapter:
    """Instantiate (not load) the adapter a model config names."""
    return adapter_class(config.adapter)(config)


def validate_config(config: ModelConfig) -> None:
    """Check that the config's adapter exists and its ``options`` are the adapter's; raises
    ``InvalidInput`` naming the model, the bad option and the valid ones. Cheap: nothing loads."""
    adapter_class(config.adapter).parse_options(config)
