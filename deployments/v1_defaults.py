"""The earlier product's defaults for ``/api/v1/{model}/inference``, decided in one place.

Precedence, first that is set wins:

1. the request's own ``parameters.context_len`` / ``horizon_len``;
2. what ``/initialization`` set for the model (only the fields it was sent);
3. the operator's defaults: the earlier product's ``TIMESFM20_DEFAULT_CONTEXT_LEN`` /
   ``TIMESFM20_DEFAULT_HORIZON_LEN`` for ``timesfm-2.0`` (``IngressOptions.request_defaults``);
4. built in: horizon 24 (the earlier product's), context the model's own maximum.

Weights and device are not request defaults: ``serve_config.yaml`` wins over
``TIMESFM20_DEFAULT_CHECKPOINT`` / ``_BACKEND``, which win over ``configs/models`` (see
``deployments.builder.model_configs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BUILTIN_HORIZON = 24


@dataclass(frozen=True)
class V1Defaults:
    context_len: int | None  # None: as much history as the model reads
    horizon_len: int


def v1_defaults(
    operator: Mapping[str, int],
    initialized: Mapping[str, int],
    context_len: int | None = None,
    horizon_len: int | None = None,
) -> V1Defaults:
    def first(name: str, requested: int | None) -> int | None:
        for value in (requested, initialized.get(name), operator.get(name)):
            if value is not None:
                return value
        return None

    return V1Defaults(
        context_len=first("context_len", context_len),
        horizon_len=first("horizon_len", horizon_len) or BUILTIN_HORIZON,
    )
