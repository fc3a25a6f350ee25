"""Ray Serve's own deployment options, validated by Serve's schemas, strictly.

Serve's schemas ignore unknown keys (``ray_actor_options: {num_cpu: 1}`` would silently run with the
default CPU). The subclasses below keep Serve's fields, defaults and validators and only forbid what
Serve does not know, so a typo fails ``serve run`` with the name of the bad key.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import DeploymentSchema, RayActorOptionsSchema


class StrictActorOptions(RayActorOptionsSchema):
    model_config = ConfigDict(extra="forbid")


class StrictAutoscaling(AutoscalingConfig):
    model_config = ConfigDict(extra="forbid")


class ServeOptions(DeploymentSchema):
    """Every key of Serve's deployment schema except ``name`` and ``user_config`` (ours)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", exclude=True)
    ray_actor_options: StrictActorOptions | None = None  # type: ignore[assignment]
    autoscaling_config: StrictAutoscaling | None = None  # type: ignore[assignment]

    def for_deployment(self) -> dict[str, Any]:
        """The keys the operator set, as ``serve.deployment(**options)`` takes them."""
        options = self.model_dump(exclude_unset=True, exclude={"name", "user_config"})
        if self.ray_actor_options is not None:
            options["ray_actor_options"] = self.ray_actor_options.model_dump(exclude_unset=True)
        if self.autoscaling_config is not None:
            options["autoscaling_config"] = self.autoscaling_config.model_dump(exclude_unset=True)
        return options


#: Keys of a model entry that are Serve's rather than ours.
SERVE_KEYS = frozenset(ServeOptions.model_fields) - {"name", "user_config"}
