"""Sapheneia's metrics, exported on Ray's Prometheus endpoint next to Ray Serve's own.

Ray prefixes every name with ``ray_`` and gives counters a ``_total`` suffix: the series counter is
scraped as ``ray_sapheneia_series_forecasted_total``. deploy/monitoring/ has the scrape configuration
and a Grafana dashboard over these and Serve's metrics.
"""

from __future__ import annotations

import re

from fastapi import Request
from ray.serve import metrics
from starlette.routing import compile_path

BATCH_SIZE_BUCKETS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]


class ModelMetrics:
    """Counters and histograms of one model deployment, tagged with the model id."""

    def __init__(self, model: str) -> None:
        # A fresh tags dict per metric: Ray Serve adds its own tags to the dict it is given.
        self.series = metrics.Counter(
            "sapheneia_series_forecasted",
            description="Series forecasted, by model.",
            tag_keys=("model",),
        )
        self.series.set_default_tags({"model": model})
        self.batch_size = metrics.Histogram(
            "sapheneia_batch_size",
            description="Series per model call (dynamic batching).",
            boundaries=BATCH_SIZE_BUCKETS,
            tag_keys=("model",),
        )
        self.batch_size.set_default_tags({"model": model})
        self.latency = metrics.Histogram(
            "sapheneia_model_latency_seconds",
            description="Seconds one model call takes for one batch.",
            boundaries=LATENCY_BUCKETS_S,
            tag_keys=("model",),
        )
        self.latency.set_default_tags({"model": model})

    def observe(self, batch_size: int, seconds: float) -> None:
        self.series.inc(batch_size)
        self.batch_size.observe(batch_size)
        self.latency.observe(seconds)


class RequestMetrics:
    """Requests answered by one ingress replica, by route template, HTTP status and error code.

    Serve's own ``serve_num_http_error_requests`` knows the status only; the code (the error body's
    ``code``, "ok" on success) says which fix the callers were told to make.
    """

    def __init__(self) -> None:
        self.requests = metrics.Counter(
            "sapheneia_requests",
            description="Requests answered, by route template, HTTP status and error code.",
            # Ray annotates tag_keys as Tuple[str] (one key) yet takes any number.
            tag_keys=("route", "status", "code"),  # type: ignore[arg-type]
        )
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def record(self, request: Request, status: int) -> None:
        code = getattr(request.state, "error_code", "ok")
        tags = {"route": self.route_template(request), "status": str(status), "code": code}
        self.requests.inc(tags=tags)

    def route_template(self, request: Request) -> str:
        """The route's template ("/api/v1/{model}/inference"), never the raw path.

        A raw path would give every URL a caller makes up its own series. A request answered before
        routing (a bad key, a body over the cap) is matched against the documented routes' templates;
        a path that none serves is "unmatched".
        """
        route = request.scope.get("route")
        if route is not None:
            return str(route.path)
        if self._templates is None:
            paths = request.app.openapi()["paths"]
            self._templates = [(compile_path(path)[0], path) for path in paths]
        path = request.url.path
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        return next((t for pattern, t in self._templates if pattern.match(path)), "unmatched")


class TrafficMetrics:
    """Series each arm of a traffic split answered, and what each shadow model did with its copy."""

    def __init__(self) -> None:
        self.series = metrics.Counter(
            "sapheneia_routed_series",
            description="Series of a traffic split, by route and the model (arm) that answered.",
            tag_keys=("route", "model"),  # type: ignore[arg-type]
        )
        self.shadow = metrics.Counter(
            "sapheneia_shadow_series",
            description="Series copied to a shadow model, by route, model and outcome "
            "(compared, failed, skipped).",
            tag_keys=("route", "model", "outcome"),  # type: ignore[arg-type]
        )

    def routed(self, route: str, model: str, series: int) -> None:
        self.series.inc(series, tags={"route": route, "model": model})

    def shadowed(self, route: str, model: str, outcome: str, series: int) -> None:
        self.shadow.inc(series, tags={"route": route, "model": model, "outcome": outcome})
