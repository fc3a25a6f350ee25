"""Wire objects: one pydantic model per request body, constraints in ``Field``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deployments.errors import invalid_input
from sapheneia.data import ColumnRoles
from sapheneia.tasks import ColumnRole, CovariateRole

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
        default_factory=lambda: [0.1, 0.5, 0.9], description="Levels in (0, 1)."
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
    format: Literal["json", "csv"] = Field(default="json", description="Response format.")


class BacktestRequest(TableRequest):
    """``POST /api/v2/backtest``: rolling-origin evaluation of one or more models."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1, max_length=8, description="Model ids to compare.")
    horizon: int = Field(ge=1, le=1000, description="Steps per window.")
    n_windows: int = Field(default=3, ge=1, le=50, description="Number of forecast origins.")
    step: int | None = Field(default=None, ge=1, description="Steps between origins (= horizon).")
