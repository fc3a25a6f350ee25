"""What a job is asked to do and with which resources: plain values, so it pickles to Ray workers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles
from sapheneia.tasks import DEFAULT_QUANTILES, CovariateRole

JobKind = Literal["forecast", "backtest"]


class Engine(BaseModel):
    """How much of the cluster a job may take. Bounded so that the online deployments keep theirs:
    a pool of ``actors`` adapters with ``actor_cpus`` (and ``actor_gpus``) each, and at most
    ``cpus`` CPUs for the whole Ray Data execution (reads, shuffle, writes included)."""

    model_config = ConfigDict(extra="forbid")

    actors: int = Field(default=1, ge=1, description="Adapter actors in the pool.")
    actor_cpus: float = Field(default=0.25, gt=0, description="num_cpus of each adapter actor.")
    actor_gpus: float = Field(default=0.0, ge=0, description="num_gpus of each adapter actor.")
    cpus: float = Field(default=1.0, gt=0, description="CPU budget of the job's execution.")
    series_per_bucket: int = Field(
        default=5000, ge=1, description="Series forecast and written together (one output part)."
    )


class JobSpec(BaseModel):
    """One job: the models, what to forecast, and the columns of the input."""

    model_config = ConfigDict(extra="forbid")

    kind: JobKind = "forecast"
    models: list[ModelConfig] = Field(min_length=1)
    horizon: int = Field(ge=1)
    quantiles: list[float] = Field(default_factory=lambda: list(DEFAULT_QUANTILES))
    context_length: int | None = None
    freq: str | None = None
    n_windows: int = 3
    step: int | None = None
    id_column: str = "unique_id"
    timestamp_column: str = "ds"
    target_column: str = "y"
    covariates: dict[str, CovariateRole] = Field(default_factory=dict)
    engine: Engine = Field(default_factory=Engine)

    def roles(self) -> ColumnRoles:
        return ColumnRoles(
            timestamp=self.timestamp_column,
            series_id=self.id_column,
            target=self.target_column,
            covariates=self.covariates,
        )

    def columns(self) -> list[str]:
        """The input columns the job reads."""
        return list(
            dict.fromkeys(
                [self.id_column, self.timestamp_column, self.target_column, *self.covariates]
            )
        )

    def fingerprint(self) -> dict[str, object]:
        """What must match for a rerun to resume an output location (not the resources)."""
        return self.model_dump(mode="json", exclude={"engine"})
