"""Settings of the ingress, resolved by ``build_app`` on the machine that runs ``serve run``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from deployments.jobs_state import JobOptions
from sapheneia.data import DataLimits


class IngressOptions(BaseModel):
    """Travels to every ingress replica: plain values only, never the keys themselves."""

    model_config = ConfigDict(extra="forbid")

    key_digests: list[str] = Field(description="SHA-256 digests of the accepted API keys.")
    admin_key_digests: list[str] = Field(
        default_factory=list,
        description="Digests of the keys that may also call /initialization and /shutdown.",
    )
    limits: DataLimits = Field(description="Where data may come from and how much of it.")
    cors_origins: list[str] = Field(default_factory=list)
    url_fetch_threads: int = Field(default=8, description="Threads fetching URL sources at once.")
    url_fetches_per_key: int = Field(default=4, description="URL fetches in flight per key.")
    rate_limit_per_minute: int = 600
    auth_failures_per_minute: int = Field(
        default=30, description="Failed authentications per client address before 429."
    )
    lifecycle_timeout_s: float = 120.0
    request_defaults: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per model: context_len / horizon_len used by /api/v1 when a request omits them "
        "(the earlier product's TIMESFM20_DEFAULT_* settings).",
    )
    jobs: JobOptions | None = Field(default=None, description="Batch jobs; None: jobs are off.")
