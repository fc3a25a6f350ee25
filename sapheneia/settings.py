"""Process settings, read from the environment (and ``.env``) when asked for, never on import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator sets through the environment. Names match the earlier product's where
    it had one (``API_SECRET_KEY``)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    api_keys: str = Field(
        default="",
        validation_alias="SAPHENEIA_API_KEYS",
        description="Comma-separated Bearer keys that may forecast, backtest and read.",
        repr=False,
    )
    admin_keys: str = Field(
        default="",
        validation_alias="SAPHENEIA_ADMIN_KEYS",
        description="Comma-separated Bearer keys that may also change model lifecycle.",
        repr=False,
    )
    api_secret_key: str = Field(
        default="",
        validation_alias="API_SECRET_KEY",
        description="The earlier product's single key; it could do everything, so it is an admin key.",
        repr=False,
    )
    # A floor, not a target: it can be raised, never lowered below what a guessable key would be.
    min_key_length: int = Field(default=16, ge=16, validation_alias="SAPHENEIA_MIN_KEY_LENGTH")
    api_key_file: Path | None = Field(
        default=None,
        validation_alias="SAPHENEIA_API_KEY_FILE",
        description="File of forecast keys, one per line (# comments allowed). With no key set "
        "anywhere, an admin key is generated into <state_dir>/api_key (mode 600).",
    )
    data_dir: Path = Field(default=Path("data"), validation_alias="SAPHENEIA_DATA_DIR")
    model_dir: Path = Field(
        default=Path("models"),
        validation_alias="SAPHENEIA_MODEL_DIR",
        description="Weights store: where `sapheneia pull` writes and the server looks first "
        "(then the Hugging Face cache). Relative paths are resolved against the working directory.",
    )
    state_dir: Path = Field(default=Path(".sapheneia"), validation_alias="SAPHENEIA_STATE_DIR")
    allow_private_urls: bool = Field(default=False, validation_alias="SAPHENEIA_ALLOW_PRIVATE_URLS")
    # s3:// and gs:// read with the server's own cloud credentials: off unless the operator opts in.
    allow_object_stores: bool = Field(
        default=False, validation_alias="SAPHENEIA_ALLOW_OBJECT_STORES"
    )
    max_request_bytes: int = Field(
        default=20 * 1024 * 1024, validation_alias="SAPHENEIA_MAX_REQUEST_BYTES"
    )
    max_rows: int = Field(default=2_000_000, ge=1, validation_alias="SAPHENEIA_MAX_ROWS")
    max_columns: int = Field(default=256, ge=1, validation_alias="SAPHENEIA_MAX_COLUMNS")
    max_series: int = Field(default=100_000, ge=1, validation_alias="SAPHENEIA_MAX_SERIES")
    max_name_chars: int = Field(default=256, ge=1, validation_alias="SAPHENEIA_MAX_NAME_CHARS")
    max_quantiles: int = Field(default=99, ge=1, validation_alias="SAPHENEIA_MAX_QUANTILES")
    max_output_cells: int = Field(
        default=50_000_000, ge=1, validation_alias="SAPHENEIA_MAX_OUTPUT_CELLS"
    )
    max_one_step_points: int = Field(
        default=2_000,
        ge=1,
        validation_alias="SAPHENEIA_MAX_ONE_STEP_POINTS",
        description="Points (series × points) one anomalies or history request may test; each is "
        "a one-step forecast.",
    )
    url_ports: str = Field(
        default="80,443",
        validation_alias="SAPHENEIA_URL_PORTS",
        description="Ports a data URL may name (comma-separated), or '*' for any.",
    )
    url_timeout_s: float = Field(default=10.0, validation_alias="SAPHENEIA_URL_TIMEOUT_S")
    # Below serve_config.yaml's http_options.request_timeout_s (120 s), so that a slow request gets
    # our 504 in the error shape rather than the proxy's plain-text 408.
    request_timeout_s: float = Field(
        default=110.0,
        gt=0,
        validation_alias="SAPHENEIA_REQUEST_TIMEOUT_S",
        description="Seconds the ingress waits for a model's answer before it answers 504 "
        "request_timeout and drops the request's queued series.",
    )
    selection_budget_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias="SAPHENEIA_SELECTION_BUDGET_S",
        description="Seconds the candidates' backtests of model 'auto' / 'ensemble' may take; "
        "candidates still running then are left out.",
    )
    cors_origins: str = Field(default="", validation_alias="SAPHENEIA_CORS_ORIGINS")
    audit_log: str = Field(
        default="",
        validation_alias="SAPHENEIA_AUDIT_LOG",
        description='One JSON line per request: "" (off), "stdout", or a file path.',
    )
    mlflow_tracking_uri: str = Field(
        default="",
        validation_alias="SAPHENEIA_MLFLOW_TRACKING_URI",
        description="MLflow tracking URI that backtests and model selections sent with "
        "'track': true are logged to (the 'mlflow' extra); empty: tracking is off.",
    )
    mlflow_experiment: str = Field(
        default="sapheneia",
        min_length=1,
        validation_alias="SAPHENEIA_MLFLOW_EXPERIMENT",
        description="The MLflow experiment those runs go to (created when missing).",
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=1,
        validation_alias="SAPHENEIA_RATE_LIMIT",
        description="Requests per key per minute, counted across every ingress replica.",
    )
    rate_limit_series: int = Field(
        default=0,
        ge=0,
        validation_alias="SAPHENEIA_RATE_LIMIT_SERIES",
        description="Series per key per minute (one 300,000-series request is 300,000); 0: off.",
    )
    daily_series_quota: int = Field(
        default=0,
        ge=0,
        validation_alias="SAPHENEIA_DAILY_SERIES_QUOTA",
        description="Series per key per UTC day, kept in the state store; 0: off.",
    )
    key_limits: str = Field(
        default="",
        validation_alias="SAPHENEIA_KEY_LIMITS",
        description='Per-key limits as JSON by key id: {"<key id>": {"requests_per_minute": n, '
        '"series_per_minute": n, "daily_series": n}}; keys not named get the limits above.',
    )
    state_url: str = Field(
        default="",
        validation_alias="SAPHENEIA_STATE_URL",
        description="Shared state store: redis://host:port/db; empty: a file in the state "
        "directory served by one Ray actor (one machine).",
        repr=False,
    )
    url_fetch_threads: int = Field(default=8, ge=1, validation_alias="SAPHENEIA_URL_FETCH_THREADS")
    url_fetches_per_key: int = Field(
        default=4, ge=1, validation_alias="SAPHENEIA_URL_FETCHES_PER_KEY"
    )
    auth_failures_per_minute: int = Field(
        default=30, ge=1, validation_alias="SAPHENEIA_AUTH_FAILURES_PER_MINUTE"
    )
    # JWT bearer tokens, accepted beside API keys once a secret or a JWKS is set.
    jwt_hs256_secret: str = Field(
        default="",
        validation_alias="SAPHENEIA_JWT_HS256_SECRET",
        description="Shared secret for HS256 tokens (at least 32 characters).",
        repr=False,
    )
    jwt_jwks: str = Field(
        default="",
        validation_alias="SAPHENEIA_JWT_JWKS",
        description="RS256 public keys: a JWKS file, or an https URL (http only to loopback).",
    )
    jwt_audience: str = Field(
        default="",
        validation_alias="SAPHENEIA_JWT_AUDIENCE",
        description="The 'aud' a token must carry; required once JWT is on.",
    )
    jwt_issuer: str = Field(
        default="",
        validation_alias="SAPHENEIA_JWT_ISSUER",
        description="The 'iss' a token must carry; unchecked when empty.",
    )
    jwt_scope_claim: str = Field(default="scope", validation_alias="SAPHENEIA_JWT_SCOPE_CLAIM")
    jwt_forecast_scope: str = Field(
        default="sapheneia:forecast", validation_alias="SAPHENEIA_JWT_FORECAST_SCOPE"
    )
    jwt_admin_scope: str = Field(
        default="sapheneia:admin", validation_alias="SAPHENEIA_JWT_ADMIN_SCOPE"
    )
    # Clock skew between the issuer and this server, for exp and nbf; minutes would stretch a
    # token's life noticeably, so it is capped.
    jwt_leeway_s: float = Field(
        default=30.0, ge=0, le=300, validation_alias="SAPHENEIA_JWT_LEEWAY_S"
    )
    jwt_jwks_timeout_s: float = Field(
        default=5.0, gt=0, le=60, validation_alias="SAPHENEIA_JWT_JWKS_TIMEOUT_S"
    )
    jwt_jwks_cache_s: float = Field(
        default=300.0, ge=0, validation_alias="SAPHENEIA_JWT_JWKS_CACHE_S"
    )
    jobs_uri: str = Field(
        default="",
        validation_alias="SAPHENEIA_JOBS_URI",
        description="Where jobs keep their state and results: a local directory (default "
        "<state_dir>/jobs) or an s3:// / gs:// prefix that every node of a cluster reaches.",
    )
    jobs_s3_endpoint: str = Field(
        default="",
        validation_alias="SAPHENEIA_JOBS_S3_ENDPOINT",
        description="The endpoint (http(s)://host:port) of an S3-compatible store (MinIO, Ceph) "
        "for an s3:// jobs location and jobs' s3:// sources; empty: AWS S3.",
    )
    jobs_retention_days: float = Field(
        default=7.0, gt=0, validation_alias="SAPHENEIA_JOBS_RETENTION_DAYS"
    )
    jobs_concurrent: int = Field(default=1, ge=1, validation_alias="SAPHENEIA_JOBS_CONCURRENT")
    # A job's share of the cluster, bounded so the online deployments keep theirs.
    jobs_actors: int = Field(default=1, ge=1, validation_alias="SAPHENEIA_JOBS_ACTORS")
    jobs_actor_cpus: float = Field(default=0.25, gt=0, validation_alias="SAPHENEIA_JOBS_ACTOR_CPUS")
    jobs_actor_gpus: float = Field(default=0.0, ge=0, validation_alias="SAPHENEIA_JOBS_ACTOR_GPUS")
    jobs_cpus: float = Field(default=1.0, gt=0, validation_alias="SAPHENEIA_JOBS_CPUS")
    jobs_series_per_bucket: int = Field(
        default=5000, ge=1, validation_alias="SAPHENEIA_JOBS_SERIES_PER_BUCKET"
    )
    jobs_max_source_bytes: int = Field(
        default=1 << 30, ge=1, validation_alias="SAPHENEIA_JOBS_MAX_SOURCE_BYTES"
    )
    hub_offline: bool = Field(default=False, validation_alias="HF_HUB_OFFLINE")
    # The earlier product's TimesFM-2.0 settings, still honoured for `timesfm-2.0` (alias timesfm20):
    # serve_config.yaml wins where it sets the same thing.
    timesfm20_default_checkpoint: str | None = Field(
        default=None, validation_alias="TIMESFM20_DEFAULT_CHECKPOINT"
    )
    timesfm20_default_backend: Literal["cpu", "gpu", "tpu", "mps"] | None = Field(
        default=None, validation_alias="TIMESFM20_DEFAULT_BACKEND"
    )
    timesfm20_default_context_len: int | None = Field(
        default=None, ge=1, validation_alias="TIMESFM20_DEFAULT_CONTEXT_LEN"
    )
    timesfm20_default_horizon_len: int | None = Field(
        default=None, ge=1, validation_alias="TIMESFM20_DEFAULT_HORIZON_LEN"
    )

    @field_validator("url_ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        from sapheneia.data.limits import ports

        ports(value)  # refused at start, not on the first URL
        return value

    @field_validator("model_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Absolute once read, so pull and the server agree whatever directory each runs from next.
        return value.expanduser().resolve()

    def jobs_location(self) -> str:
        """``jobs_uri``, or ``<state_dir>/jobs`` made absolute (jobs run in other directories)."""
        if self.jobs_uri:
            return self.jobs_uri if "://" in self.jobs_uri else str(Path(self.jobs_uri).resolve())
        return str((self.state_dir / "jobs").resolve())

    def legacy_timesfm20(self) -> tuple[dict[str, str], dict[str, int]]:
        """Config overrides and request defaults for timesfm-2.0 from the earlier product's names."""
        overrides: dict[str, str] = {}
        if self.timesfm20_default_checkpoint:
            overrides["checkpoint"] = self.timesfm20_default_checkpoint
        if self.timesfm20_default_backend:
            overrides["device"] = {"gpu": "cuda", "mps": "mps"}.get(
                self.timesfm20_default_backend, "cpu"
            )
        defaults = {
            key: value
            for key, value in (
                ("context_len", self.timesfm20_default_context_len),
                ("horizon_len", self.timesfm20_default_horizon_len),
            )
            if value is not None
        }
        return overrides, defaults


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
