"""Wire objects: one pydantic model per request body, constraints in ``Field``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deployments.errors import invalid_input
from sapheneia.data import ColumnRoles
from sapheneia.tasks import DEFAULT_QUANTILES, ColumnRole, CovariateRole

SEED_EXAMPLE: dict[str, Any] = {
    "data_source_url_or_path": "sample_data.csv",
    "data_definition": {"price": "target", "volume": "dynamic_numerical"},
    "parameters": {
        "context_len": 64,
        "horizon_len": 24,
        "use_covariates": False,
        "use_quantiles": True,
        "quantile_indices": [1, 3, 5, 7, 9],
    },
}


class InitializationRequest(BaseModel):
    """The earlier product's ``/initialization`` body; every field optional."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["cpu", "gpu", "tpu", "mps"] = Field(
        default="cpu", description="Kept for old clients; the device comes from serve_config.yaml."
    )
    # Unset fields change nothing: a bare POST keeps the operator's defaults (see v1_defaults).
    context_len: int | None = Field(
        default=None, ge=1, le=16384, description="Default context length for later /inference."
    )
    horizon_len: int | None = Field(
        default=None, ge=1, le=10000, description="Default horizon for later /inference."
    )
    checkpoint: str | None = Field(
        default=None, description="Must match the configured checkpoint, if sent."
    )
    local_model_path: str | None = Field(
        default=None, description="Must match the configured checkpoint, if sent."
    )


class InferenceParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context_len: int | None = Field(default=None, ge=1, le=16384, description="History points.")
    horizon_len: int | None = Field(default=None, ge=1, le=10000, description="Steps ahead.")
    use_covariates: bool = Field(default=False, description="Use the covariate columns.")
    use_quantiles: bool = Field(default=True, description="Return quantiles and bands.")
    quantile_indices: list[int] = Field(
        default_factory=lambda: [1, 3, 5, 7, 9],
        description="0 is the mean, 1-9 are Q10-Q90; consecutive pairs become bands.",
    )
    context_start_date: str | None = Field(default=None, description="First history date used.")
    context_end_date: str | None = Field(default=None, description="Last history date used.")
    freq: int | str | None = Field(
        default=None,
        description="Pandas frequency alias ('D', 'MS'); the old TimesFM indicator 0/1/2 is accepted "
        "and ignored, since the frequency is inferred from the dates.",
    )

    @model_validator(mode="after")
    def _indices_in_range(self) -> InferenceParameters:
        bad = [i for i in self.quantile_indices if not 0 <= i <= 9]
        if bad:
            raise ValueError(f"quantile_indices must be 0-9 (0 = mean, 1-9 = Q10-Q90); got {bad}")
        return self


class InferenceRequest(BaseModel):
    """The earlier product's ``/inference`` body."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SEED_EXAMPLE]})

    data_source_url_or_path: str = Field(
        description="File name in the uploads folder, path inside the data directory, or HTTP(S) URL."
    )
    data_definition: dict[str, ColumnRole] = Field(
        description="Column -> role; exactly one 'target'."
    )
    parameters: InferenceParameters = Field(default_factory=InferenceParameters)


class ColumnNames(BaseModel):
    """Which columns hold what, and where the rows are: inline ``data`` or a ``source``."""

    model_config = ConfigDict(extra="forbid")

    id_column: str = Field(default="unique_id", description="Series id column.")
    timestamp_column: str = Field(default="ds", description="Timestamp column.")
    target_column: str = Field(default="y", description="Target column.")
    covariates: dict[str, CovariateRole] = Field(default_factory=dict, description="Column roles.")

    def roles(self, columns: Iterable[object]) -> ColumnRoles:
        """The data contract's roles; a table without the id column is one series."""
        return ColumnRoles(
            timestamp=self.timestamp_column,
            series_id=self.id_column if self.id_column in set(columns) else None,
            target=self.target_column,
            covariates=self.covariates,
        )


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], raw: bytes) -> Body:
    """A request body validated into ``model``; problems become one 400 that lists them."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise invalid_input(error.errors()) from error


FORECAST_EXAMPLE: dict[str, Any] = {
    "model": "auto-ets",
    "horizon": 3,
    "quantiles": [0.1, 0.5, 0.9],
    "data": [{"unique_id": "a", "ds": f"2024-{m:02d}-01", "y": 10 + m} for m in range(1, 13)],
}


UPLOAD_SOURCE = "upload"


class TableRequest(ColumnNames):
    """What forecast and backtest requests share: the rows, their columns, quantiles, context."""

    quantiles: list[float] = Field(
        default_factory=lambda: list(DEFAULT_QUANTILES), description="Levels in (0, 1)."
    )
    data: list[dict[str, object]] | None = Field(
        default=None, description="Rows in long format; future covariate rows have an empty target."
    )
    source: str | None = Field(
        default=None,
        description="Instead of data: a path inside the data directory or a URL (with a multipart "
        "upload, the uploaded file).",
    )
    context_length: int | None = Field(default=None, ge=1, le=16384, description="History used.")
    freq: str | None = Field(default=None, description="Pandas alias; inferred when omitted.")

    @model_validator(mode="after")
    def _one_source(self) -> TableRequest:
        if (self.data is None) == (self.source is None):
            raise ValueError("send exactly one of 'data' (rows) or 'source' (path or URL)")
        return self


class ForecastRequest(TableRequest):
    """``POST /api/v2/forecast`` as JSON: many series in long format."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [FORECAST_EXAMPLE]})

    model: str = Field(description="Model id or alias, see GET /api/v2/models.")
    horizon: int = Field(ge=1, le=10000, description="Steps ahead to forecast.")
    format: Literal["json", "csv", "arrow"] = Field(
        default="json",
        description="Response format: JSON, CSV, or an Arrow IPC stream (with 'model' and "
        "'metadata' as JSON in its schema's metadata, under 'sapheneia'); with 'json', an Accept "
        "header of text/csv or application/vnd.apache.arrow.stream chooses instead.",
    )
    history: bool = Field(
        default=False,
        description="Also return in-sample one-step fitted values for the latest history points "
        "(at most SAPHENEIA_MAX_ONE_STEP_POINTS in all): JSON under 'history', CSV as rows with "
        "kind 'history' before the kind 'forecast' rows.",
    )
    # Model selection and calibration (model "auto" / "ensemble", calibrate), see README.
    candidates: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Models 'auto' and 'ensemble' choose among; default: every ready model that "
        "supports the request.",
    )
    windows: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="Backtest windows for 'auto', 'ensemble' and calibrate (default 2, or 10 "
        "when calibrating, cut to what the shortest history holds).",
    )
    metric: Literal["MASE", "WQL"] | None = Field(
        default=None,
        description="What 'auto' minimises; default MASE, WQL when quantiles are asked.",
    )
    k: int = Field(default=3, ge=1, le=16, description="Models 'ensemble' combines per series.")
    calibrate: bool = Field(
        default=False,
        description="Conformalise the quantiles on rolling-origin residuals of the series' own "
        "history; the answer reports coverage before and after.",
    )
    track: bool = Field(
        default=False,
        description="With model 'auto' or 'ensemble': log the selection as an MLflow run "
        "(needs SAPHENEIA_MLFLOW_TRACKING_URI on the server); metadata.mlflow_run_id is its id.",
    )


class BacktestRequest(TableRequest):
    """``POST /api/v2/backtest``: rolling-origin evaluation of one or more models."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1, max_length=8, description="Model ids to compare.")
    horizon: int = Field(ge=1, le=1000, description="Steps per window.")
    n_windows: int = Field(default=3, ge=1, le=50, description="Number of forecast origins.")
    step: int | None = Field(default=None, ge=1, description="Steps between origins (= horizon).")
    track: bool = Field(
        default=False,
        description="Log the backtest as an MLflow run (needs SAPHENEIA_MLFLOW_TRACKING_URI on the "
        "server); metadata.mlflow_run_id is its id.",
    )


ANOMALIES_EXAMPLE: dict[str, Any] = {
    "model": "seasonal-naive",
    "level": 99,
    "last_n": 6,
    "data": [{"unique_id": "a", "ds": f"2024-{m:02d}-01", "y": 10 + m % 3} for m in range(1, 13)],
}


class AnomaliesRequest(TableRequest):
    """``POST /api/v2/anomalies``: flag points outside a model's one-step prediction interval."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ANOMALIES_EXAMPLE]})

    model: str = Field(description="Model id or alias, see GET /api/v2/models.")
    level: float = Field(
        default=99, gt=0, lt=100, description="Central interval, in percent, a point must leave."
    )
    last_n: int | None = Field(
        default=None,
        ge=1,
        description="Test only each series' latest points; by default as many as the limit allows.",
    )
    quantiles: list[float] = Field(
        default_factory=list, max_length=0, description="Not used: 'level' sets the interval."
    )


class ErrorDetail(BaseModel):
    # Forbidding extra keys makes the document say what the one error shape is: these three only.
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable error code; the README lists them all.")
    message: str = Field(description="What is wrong and how to fix it.")
    request_id: str = Field(description="The request's id, also in the X-Request-ID header.")


class ErrorBody(BaseModel):
    """Every error answer, on every route: ``{"error": {"code", "message", "request_id"}}``."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "Malformed request (invalid_input and its kinds): the message names the field and the fix.",
    401: "Missing, malformed or unknown API key (unauthorized).",
    403: "The key may not do this (forbidden), or the data source is outside what the server "
    "allows (source_forbidden).",
    404: "Unknown model (model_not_found) or data file (source_not_found).",
    409: "The model is already initializing (conflict); poll its status.",
    413: "The body or the data is over a limit (payload_too_large, limit_exceeded); the message "
    "names the limit and how to get under it.",
    422: "Well-formed data that cannot be forecast as sent (data_error and its kinds, "
    "source_unreachable).",
    429: "Too many requests for this key (rate_limited); see Retry-After.",
    500: "A server fault (internal_error); quote the request id to the operator.",
    502: "The model answered with values that are not finite numbers (model_output_invalid).",
    503: "The model cannot serve now (model_unavailable), or MLflow did not record a tracked run "
    "(tracking_unavailable); see Retry-After and the message.",
    504: "The model took longer than its time limit (model_timeout).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for these error statuses, each with the one error body."""
    return {s: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[s]} for s in statuses}


# Answered by the ingress middleware on any route: a body over the cap, or a fault.
EVERY_ROUTE_ERRORS = (413, 500)
# Any route that needs a key.
AUTHENTICATED_ERRORS = (*EVERY_ROUTE_ERRORS, 401, 429)
# A route that loads the caller's data and forecasts it.
FORECAST_ERRORS = (*AUTHENTICATED_ERRORS, 400, 403, 404, 422, 502, 503, 504)

Row = dict[str, str | float | None]


class ModelVersion(BaseModel):
    """Which model answered: its id, adapter, weights and hub revision."""

    id: str
    adapter: str
    checkpoint: str | None = Field(description="The weights' public name; a local path is hidden.")
    revision: str | None


class TrafficArm(BaseModel):
    series: int = Field(description="Series this arm answered.")
    model_version: ModelVersion


class TrafficReport(BaseModel):
    route: str = Field(description="The traffic route that was asked for.")
    arms: dict[str, TrafficArm] = Field(description="Per model the route sent series to.")


class ForecastMetadata(BaseModel):
    model_version: ModelVersion | None = Field(
        description="The model that answered ('selection' as adapter for auto / ensemble); null "
        "for a traffic route, whose arms are in 'traffic'."
    )
    series_count: int
    horizon: int
    quantiles: list[float]
    interpolated_quantiles: list[float] = Field(
        description="Levels the model does not output natively, interpolated from its own."
    )
    covariates_used: bool
    batch_sizes: list[int | None] = Field(description="Size of the batch each series ran in.")
    total_time_seconds: float
    request_id: str
    mlflow_run_id: str | None = Field(
        default=None, description="With 'track': the MLflow run that recorded the selection."
    )
    candidates: dict[str, ModelVersion] | None = Field(
        default=None,
        description="With auto / ensemble / calibrate: the candidates whose backtests finished.",
    )
    traffic: TrafficReport | None = Field(
        default=None, description="With a traffic route: how many series each arm answered."
    )


class ForecastResponse(BaseModel):
    """``POST /api/v2/forecast`` as JSON: one row per series and step."""

    model: str = Field(description="The model id that answered (an alias resolved).")
    forecast: list[Row] = Field(
        description="Rows of the id column, 'ds', 'mean', 'median' and one 'q-<level>' column "
        "per quantile."
    )
    metadata: ForecastMetadata
    history: list[Row] | None = Field(
        default=None,
        description="With 'history': true, in-sample one-step fits: the id column, 'ds', 'y' and "
        "the forecast's columns, each fitted on the history before that point.",
    )
    selection: list[SelectionEntry] | None = Field(
        default=None, description="With model 'auto' or 'ensemble': what each series chose."
    )
    candidates_left_out: dict[str, str] | None = Field(
        default=None,
        description="With auto / ensemble: default candidates left out, each with the reason "
        "(it failed, or ran past SAPHENEIA_SELECTION_BUDGET_S).",
    )
    calibration: CalibrationReport | None = Field(
        default=None, description="With calibrate: coverage on the calibration windows."
    )


class SelectionEntry(BaseModel):
    unique_id: str
    selected_model: str = Field(description="The best candidate by the metric.")
    score: float | None = Field(description="Its score (lower is better); null if undefined.")
    runner_up: str | None
    runner_up_score: float | None
    metric: str
    members: list[str] | None = Field(default=None, description="'ensemble': the models combined.")


class LevelCoverage(BaseModel):
    level: float = Field(description="A quantile level (share of actuals expected at or below).")
    before: float
    after: float


class IntervalCoverage(BaseModel):
    level: float = Field(description="A central interval in percent (quantiles q and 1 - q).")
    before: float
    after: float


class CalibrationReport(BaseModel):
    windows: int = Field(description="Calibration windows (rolling origins).")
    step: int = Field(
        description="Observations between consecutive windows' cutoffs: a quarter of the horizon "
        "(rounded down, at least 1), less where the shortest history holds fewer windows."
    )
    pooled: bool = Field(
        description="Scores pooled across the request's series: the windows hold fewer than 20 "
        "that do not overlap."
    )
    quantiles: list[LevelCoverage]
    intervals: list[IntervalCoverage]


class BacktestMetadata(BaseModel):
    windows: int
    horizon: int
    step: int
    series_count: int
    request_id: str
    mlflow_run_id: str | None = Field(
        default=None, description="With 'track': the MLflow run that recorded the backtest."
    )


class BacktestResponse(BaseModel):
    """``POST /api/v2/backtest``: scores per model and series, and every window's forecasts."""

    metrics: list[dict[str, str | float | dict[str, str] | None]] = Field(
        description="One row per model: MASE, sMAPE, WQL, 80% coverage; an undefined metric is "
        "null, with the reason under 'undefined'."
    )
    forecasts: list[Row] = Field(description="Each window's forecasts beside the actual values.")
    metadata: BacktestMetadata


class AnomaliesMetadata(BaseModel):
    level: float
    quantiles: list[float] = Field(description="The interval's edges as quantile levels.")
    points_per_series: int
    series_count: int
    anomalies: int = Field(description="Points flagged.")
    replaced: int = Field(
        description="Points flagged in the first round and replaced by their one-step forecast "
        "in the context of the later points (a run of flags: its first point only)."
    )
    forecast_again: int = Field(
        description="Points forecast a second time, with the replaced points in their context."
    )
    largest_batch: int | None = Field(description="The largest model batch the points ran in.")
    total_time_seconds: float
    request_id: str


class AnomaliesResponse(BaseModel):
    """``POST /api/v2/anomalies``: one row per tested point."""

    model: str = Field(description="The model id that answered (an alias resolved).")
    anomalies: list[dict[str, str | float | bool | None]] = Field(
        description="Rows of the id column, 'ds', 'y', the one-step 'mean', the interval 'lo' / "
        "'hi', 'anomaly' (y outside it) and 'score' (distance outside, in interval widths; 0 "
        "inside)."
    )
    metadata: AnomaliesMetadata
