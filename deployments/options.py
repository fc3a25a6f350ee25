"""Settings of the ingress, resolved by ``build_app`` on the machine that runs ``serve run``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from deployments.jobs_state import JobOptions
from deployments.rate_limits import KeyLimitOverrides, KeyLimits
from deployments.state_store import StateOptions
from deployments.traffic import TrafficRoute
from sapheneia.data import DataLimits
from sapheneia.tracking import TrackingTarget


class JwtOptions(BaseModel):
    """How JWT bearer tokens are verified, and which scopes grant what.

    The HS256 secret has to travel to the replicas to verify anything; it is a ``SecretStr`` so it
    never shows in a repr or a log. A JWKS file is read at start and its public keys travel; a JWKS
    URL is fetched by each replica.
    """

    model_config = ConfigDict(extra="forbid")

    audience: str = Field(min_length=1, description="The 'aud' every token must carry.")
    issuer: str = Field(default="", description="The 'iss' every token must carry; '' unchecked.")
    hs256_secret: SecretStr | None = None
    jwks: dict[str, Any] | None = Field(default=None, description="A JWKS read from a file.")
    jwks_url: str = ""
    jwks_timeout_s: float = 5.0
    jwks_cache_s: float = 300.0
    leeway_s: float = 30.0
    scope_claim: str = "scope"
    forecast_scope: str = "sapheneia:forecast"
    admin_scope: str = "sapheneia:admin"


class IngressOptions(BaseModel):
    """Travels to every ingress replica: plain values only, never the keys themselves."""

    model_config = ConfigDict(extra="forbid")

    key_digests: list[str] = Field(description="SHA-256 digests of the accepted API keys.")
    admin_key_digests: list[str] = Field(
        default_factory=list,
        description="Digests of the keys that may also call /initialization and /shutdown.",
    )
    jwt: JwtOptions | None = Field(default=None, description="JWT bearer tokens; None: off.")
    limits: DataLimits = Field(description="Where data may come from and how much of it.")
    cors_origins: list[str] = Field(default_factory=list)
    audit_log: str = Field(default="", description='"" (off), "stdout", or a file to append to.')
    url_fetch_threads: int = Field(default=8, description="Threads fetching URL sources at once.")
    url_fetches_per_key: int = Field(default=4, description="URL fetches in flight per key.")
    rate_limit_per_minute: int = Field(default=600, description="Requests per key per minute.")
    series_per_minute: int = Field(default=0, description="Series per key per minute; 0: off.")
    daily_series_quota: int = Field(default=0, description="Series per key per UTC day; 0: off.")
    key_limits: dict[str, KeyLimitOverrides] = Field(
        default_factory=dict, description="Per key id: limits over the three above."
    )
    state: StateOptions | None = Field(
        default=None, description="The shared state store; None: a file in this process only."
    )
    auth_failures_per_minute: int = Field(
        default=30, description="Failed authentications per client address before 429."
    )
    lifecycle_timeout_s: float = 120.0
    request_timeout_s: float = Field(
        default=110.0, description="Seconds a model call may take before the ingress answers 504."
    )
    selection_budget_s: float = Field(
        default=60.0, description="Seconds the backtests of model 'auto' / 'ensemble' may take."
    )
    request_defaults: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per model: context_len / horizon_len used by /api/v1 when a request omits them "
        "(the earlier product's TIMESFM20_DEFAULT_* settings).",
    )
    jobs: JobOptions | None = Field(default=None, description="Batch jobs; None: jobs are off.")
    mlflow: TrackingTarget | None = Field(
        default=None, description="Where requests with 'track' log their run; None: off."
    )
    traffic: list[TrafficRoute] = Field(
        default_factory=list, description="Traffic splits and shadow models (serve_config.yaml)."
    )


def key_limits(options: IngressOptions) -> KeyLimits:
    """The limits of a key that ``key_limits`` does not name."""
    return KeyLimits(
        requests_per_minute=options.rate_limit_per_minute,
        series_per_minute=options.series_per_minute,
        daily_series=options.daily_series_quota,
    )
