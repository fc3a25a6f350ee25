"""Per-model metrics, exported on Ray's Prometheus endpoint next to Ray Serve's own."""

from __future__ import annotations

from ray.serve import metrics

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
