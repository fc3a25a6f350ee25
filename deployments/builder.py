"""``serve_config.yaml`` -> Ray Serve application: typed args, one ModelServer per model, one Ingress.

``serve run serve_config.yaml`` calls ``build_app(args)`` with the ``args`` of the ``api`` application.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import serve
from ray.serve import Application

from deployments.ingress import Ingress
from deployments.jobs_state import JobOptions
from deployments.jwt_auth import jwt_options
from deployments.model_server import BatchSettings, ModelServer
from deployments.options import IngressOptions
from deployments.rate_limits import parse_key_limits
from deployments.serve_options import SERVE_KEYS, ServeOptions, StrictActorOptions
from deployments.state_store import StateOptions
from deployments.traffic import TrafficRoute
from sapheneia.config import ModelConfig, load_model_configs
from sapheneia.data import DataLimits
from sapheneia.jobs.spec import Engine
from sapheneia.keys import digest, load_keys
from sapheneia.models.registry import validate_config
from sapheneia.selection import SELECTORS
from sapheneia.settings import Settings
from sapheneia.tracking import TrackingTarget, require_mlflow

logger = logging.getLogger("ray.serve")

# Concurrent batches a replica should be able to queue: one running, one filling.
BATCHES_IN_FLIGHT = 2
# Requests each ingress replica holds for a model whose replicas are all busy, in batches: beyond
# this the caller gets 503 overloaded at once instead of waiting in a queue that only grows.
BATCHES_QUEUED = 2
# During a redeploy, start each replacement before stopping the replica it replaces, so that the
# model keeps serving throughout (Serve's default stops the old replica first).
SURGE_PERCENT = 100
# How long a replica being replaced may take to finish what it holds before Serve kills it (Serve's
# default is 20 s). A request may legitimately run until the ingress deadline, and on a crowded
# machine the old replicas fall behind while the new ones start: killing them earlier fails the
# requests they hold. An idle replica still stops at once.
DRAIN_MARGIN_S = 10.0
# Seconds a caller shed by backpressure is told to wait (Retry-After).
RETRY_AFTER_S = 1


# Keys of a model entry that override its configs/models/<id>.yaml (ModelConfig's own fields).
CONFIG_KEYS = frozenset(ModelConfig.model_fields) - {"id"}
DEFAULT_ACTOR_OPTIONS = {"num_cpus": 0.5}


class ModelEntry(BaseModel):
    """One served model in serve_config.yaml, a flat mapping split three ways: ``id``;
    ``ModelConfig`` fields that override the model's YAML (validated by ``ModelConfig`` when merged);
    Ray Serve's deployment options (validated by Serve's schema); and ``user_config`` (batching)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Model id; its defaults come from configs/models/<id>.yaml.")
    overrides: dict[str, Any] = Field(default_factory=dict)
    serve: ServeOptions = Field(default_factory=ServeOptions)
    user_config: BatchSettings = Field(default_factory=BatchSettings)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or "overrides" in raw or "serve" in raw:
            return raw
        unknown = set(raw) - CONFIG_KEYS - SERVE_KEYS - {"id", "user_config"}
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(sorted(unknown))} for model '{raw.get('id')}'; valid: "
                f"id, user_config, model keys {', '.join(sorted(CONFIG_KEYS))}, Ray Serve keys "
                f"{', '.join(sorted(SERVE_KEYS))}"
            )
        return {
            "id": raw.get("id"),
            "overrides": {k: v for k, v in raw.items() if k in CONFIG_KEYS},
            "serve": {k: v for k, v in raw.items() if k in SERVE_KEYS},
            "user_config": raw.get("user_config", {}),
        }

    @model_validator(mode="after")
    def _room_for_batches(self) -> ModelEntry:
        needed = self.user_config.max_batch_size
        ongoing = self.serve.max_ongoing_requests
        if "max_ongoing_requests" in self.serve.model_fields_set and ongoing < needed:
            raise ValueError(
                f"model '{self.id}': max_ongoing_requests ({ongoing}) must be at "
                f"least max_batch_size ({needed}), or batches can never fill"
            )
        return self


class IngressEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_replicas: int = Field(default=1, ge=1)
    # Serve's schema, strictly, as for the models: a typo fails with the key's name.
    ray_actor_options: StrictActorOptions = Field(
        default_factory=lambda: StrictActorOptions(num_cpus=0.5)
    )
    max_ongoing_requests: int = Field(default=256, ge=1)
    max_queued_requests: int = Field(
        default=256,
        ge=1,
        description="Requests the proxy holds while every ingress replica is at "
        "max_ongoing_requests; beyond this the proxy answers 503 with Retry-After itself.",
    )
    lifecycle_timeout_s: float = Field(default=120.0, gt=0)


class AppArgs(BaseModel):
    """The ``args`` of the api application in serve_config.yaml."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = Field(min_length=1, description="Models to serve.")
    models_dir: str = Field(default="configs/models", description="Folder of model YAML configs.")
    ingress: IngressEntry = Field(default_factory=IngressEntry)
    traffic: list[TrafficRoute] = Field(
        default_factory=list,
        description="Routed names: a split of series over models by weight, and a shadow model.",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> AppArgs:
        seen: set[str] = set()
        for entry in self.models:
            if entry.id in seen:
                raise ValueError(f"model id '{entry.id}' is listed twice in serve_config.yaml")
            seen.add(entry.id)
        return self

    @model_validator(mode="after")
    def _routes_name_served_models(self) -> AppArgs:
        served = {entry.id for entry in self.models}
        names: set[str] = set()
        for route in self.traffic:
            if route.name in SELECTORS:
                raise ValueError(f"traffic name '{route.name}' is reserved for model selection")
            if route.name in served or route.name in names:
                raise ValueError(
                    f"traffic name '{route.name}' is already a model id or another route's name"
                )
            names.add(route.name)
            unknown = sorted(route.models() - served)
            if unknown:
                raise ValueError(
                    f"traffic '{route.name}' names {', '.join(map(repr, unknown))}, not among the "
                    f"models of serve_config.yaml ({', '.join(sorted(served))})"
                )
        return self


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def models_dir(args: AppArgs) -> Path:
    """``models_dir`` as given, or relative to the project: Ray builds the app in its own directory."""
    given = Path(args.models_dir)
    return given if given.is_dir() or given.is_absolute() else PROJECT_ROOT / given


LEGACY_TIMESFM = "timesfm-2.0"


def model_configs(args: AppArgs, settings: Settings | None = None) -> dict[str, ModelConfig]:
    """Each entry's config: its YAML file, then the earlier product's TIMESFM20_DEFAULT_* variables
    (for timesfm-2.0), then the overrides in serve_config.yaml."""
    legacy = settings.legacy_timesfm20()[0] if settings is not None else {}
    directory = models_dir(args)
    known = load_model_configs(directory) if directory.is_dir() else {}
    configs: dict[str, ModelConfig] = {}
    names: dict[str, str] = {}
    for entry in args.models:
        base = known.get(entry.id)
        if base is None and "adapter" not in entry.overrides:
            raise ValueError(
                f"unknown model id '{entry.id}': add {args.models_dir}/{entry.id}.yaml or give it an "
                f"'adapter'; known ids: {', '.join(sorted(known))}"
            )
        fields: dict[str, Any] = base.model_dump() if base else {"id": entry.id}
        if entry.id == LEGACY_TIMESFM:
            fields.update(legacy)
        overrides = dict(entry.overrides)
        # Options merge key by key over the YAML's; every other key replaces the YAML's value.
        options = {**fields.get("options", {}), **overrides.pop("options", {})}
        fields.update(overrides, options=options)
        config = ModelConfig.model_validate(fields)
        validate_config(config)
        for name in [config.id, *config.aliases]:
            if name in names:
                raise ValueError(f"name '{name}' is used by both '{names[name]}' and '{config.id}'")
            names[name] = config.id
        configs[config.id] = config
    return configs


def ingress_options(
    settings: Settings, entry: IngressEntry, traffic: list[TrafficRoute] | None = None
) -> IngressOptions:
    keys = load_keys(settings)
    if keys.key_file is not None:
        logger.warning("API keys are read from %s", keys.key_file.resolve())
    return IngressOptions(
        key_digests=[digest(k) for k in keys.forecast],
        admin_key_digests=[digest(k) for k in keys.admin],
        jwt=jwt_options(settings),
        limits=DataLimits.from_settings(settings),
        cors_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
        audit_log=settings.audit_log,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        series_per_minute=settings.rate_limit_series,
        daily_series_quota=settings.daily_series_quota,
        key_limits=parse_key_limits(settings.key_limits),
        state=StateOptions.from_settings(settings),  # the same store as the models' board
        auth_failures_per_minute=settings.auth_failures_per_minute,
        url_fetch_threads=settings.url_fetch_threads,
        url_fetches_per_key=settings.url_fetches_per_key,
        lifecycle_timeout_s=entry.lifecycle_timeout_s,
        request_timeout_s=settings.request_timeout_s,
        selection_budget_s=settings.selection_budget_s,
        request_defaults={LEGACY_TIMESFM: settings.legacy_timesfm20()[1]},
        jobs=job_options(settings),
        mlflow=tracking_target(settings),
        traffic=traffic or [],
    )


def tracking_target(settings: Settings) -> TrackingTarget | None:
    """MLflow tracking when its URI is set; without the extra installed, the start fails naming it."""
    if not settings.mlflow_tracking_uri:
        return None
    require_mlflow()
    return TrackingTarget(uri=settings.mlflow_tracking_uri, experiment=settings.mlflow_experiment)


def job_options(settings: Settings) -> JobOptions:
    engine = Engine(
        actors=settings.jobs_actors,
        actor_cpus=settings.jobs_actor_cpus,
        actor_gpus=settings.jobs_actor_gpus,
        cpus=settings.jobs_cpus,
        series_per_bucket=settings.jobs_series_per_bucket,
    )
    return JobOptions(
        uri=settings.jobs_location(),
        s3_endpoint=settings.jobs_s3_endpoint or None,
        retention_days=settings.jobs_retention_days,
        concurrent=settings.jobs_concurrent,
        engine=engine,
        max_source_bytes=settings.jobs_max_source_bytes,
    )


def deployment_options(entry: ModelEntry, drain_s: float = 120.0) -> dict[str, Any]:
    """Serve's options for one model: the operator's keys over our defaults."""
    batch = entry.user_config.max_batch_size
    options: dict[str, Any] = {
        "graceful_shutdown_timeout_s": drain_s,
        "ray_actor_options": DEFAULT_ACTOR_OPTIONS,
        "max_ongoing_requests": batch * BATCHES_IN_FLIGHT,
        "max_queued_requests": batch * BATCHES_QUEUED,
        "max_surge_percent": SURGE_PERCENT,
        "health_check_period_s": 10,
        **entry.serve.for_deployment(),
        "name": f"model-{entry.id}",
        "user_config": entry.user_config.model_dump(),
    }
    if "autoscaling_config" in options and options.get("num_replicas") != "auto":
        # A fixed count and autoscaling exclude each other; "auto" with a config is Serve's
        # defaults (up to 100 replicas) with the operator's keys over them.
        options.pop("num_replicas", None)
    return options


def build_app(args: dict[str, Any]) -> Application:
    """What ``serve run serve_config.yaml`` calls (Serve requires a one-argument builder)."""
    return build_app_with_settings(args, Settings())


def build_app_with_settings(args: dict[str, Any], settings: Settings) -> Application:
    """The Serve application for ``args`` (validated; bad config fails with a clear message)."""
    parsed = AppArgs.model_validate(args)
    configs = model_configs(parsed, settings)
    aliases = {alias: c.id for c in configs.values() for alias in c.aliases}
    for route in parsed.traffic:
        if route.name in aliases:
            raise ValueError(
                f"traffic name '{route.name}' is already an alias of model '{aliases[route.name]}'"
            )
    state = StateOptions.from_settings(settings)
    drain_s = settings.request_timeout_s + DRAIN_MARGIN_S
    handles = {
        entry.id: serve.deployment(ModelServer, **deployment_options(entry, drain_s)).bind(  # type: ignore[attr-defined]
            configs[entry.id], state
        )
        for entry in parsed.models
    }
    options = ingress_options(settings, parsed.ingress, parsed.traffic)
    ingress = serve.deployment(
        serve.ingress()(Ingress),
        name="ingress",
        num_replicas=parsed.ingress.num_replicas,
        ray_actor_options=parsed.ingress.ray_actor_options.model_dump(exclude_unset=True),
        max_ongoing_requests=parsed.ingress.max_ongoing_requests,
        max_queued_requests=parsed.ingress.max_queued_requests,
        # The proxy answers this rejection itself, in plain text: only status and header can be set.
        backpressure_config={"status_code": 503, "retry_after_s": RETRY_AFTER_S},
        max_surge_percent=SURGE_PERCENT,
        graceful_shutdown_timeout_s=drain_s,
    )
    return ingress.bind(handles, configs, options)  # type: ignore[attr-defined]
