"""Per-model configuration, validated from YAML (``configs/models/*.yaml``) or ``serve_config.yaml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sapheneia.errors import InvalidInput

#: Weights dtypes a torch model may run in.
Dtype = Literal["float32", "bfloat16", "float16"]
#: Devices a model may name: the first GPU if there is one, the CPU, a CUDA GPU, Apple's GPU.
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


class ModelConfig(BaseModel):
    """One served model: which adapter, which weights, and the adapter's own options."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Name used in URLs and requests, e.g. 'auto-ets' or 'timesfm-2.5'.")
    adapter: str = Field(
        description="Registry name of the adapter ('statsforecast', 'timesfm-2.5', ...) or an import "
        "path 'package.module:ClassName' for a custom adapter."
    )
    checkpoint: str | None = Field(
        default=None, description="Hugging Face repo id or local directory holding the weights."
    )
    revision: str | None = Field(
        default=None,
        description="Hub revision of the weights (a commit hash or a tag), for loading and "
        "`sapheneia pull`; the latest when omitted. Ignored for a local directory.",
    )
    aliases: list[str] = Field(
        default_factory=list, description="Other ids that reach this model (e.g. 'timesfm20')."
    )
    device: str = Field(
        default="auto",
        description="'auto' (the first CUDA GPU if there is one, else the CPU), 'cpu', 'cuda', "
        "'cuda:N' or 'mps'. Models without weights (statistical) ignore it.",
    )
    dtype: Dtype = Field(
        default="float32",
        description="Weights dtype: float32, bfloat16 or float16. TimesFM runs either half "
        "precision on CPU too; Chronos and FlowState keep float32 on CPU (and log that they do).",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="torch threads per replica; by default Ray's, which is num_cpus rounded down "
        "(at least 1), so a replica with num_cpus 0.5 runs single-threaded.",
    )
    licence_acknowledged: bool = Field(
        default=False,
        description="Required for models whose weights are not licensed commercially.",
    )
    description: str = Field(default="", description="One line shown in /models and the UI.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The adapter's own settings, checked against its options model (see "
        "sapheneia.models.registry.validate_config).",
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if DEVICE.fullmatch(device) is None:
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' (N a GPU's index) or 'mps'; "
                f"got {device!r}"
            )
        return device


def load_model_configs(directory: Path) -> dict[str, ModelConfig]:
    """Read every ``*.yaml`` in ``directory`` as one ``ModelConfig``, keyed by id; each one's
    adapter and options are checked (``validate_config``), so a misspelt option fails here."""
    # Imported here: the adapters' module imports this one for ModelConfig.
    from sapheneia.models.registry import validate_config

    configs: dict[str, ModelConfig] = {}
    for path in sorted(directory.glob("*.yaml")):
        config = ModelConfig.model_validate(yaml.safe_load(path.read_text()))
        validate_config(config)
        if config.id in configs:
            raise InvalidInput(
                f"model id '{config.id}' is defined twice (second time in {path.name})"
            )
        configs[config.id] = config
    return configs
