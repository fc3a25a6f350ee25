"""Batch jobs: the served adapters over datasets too big for a request, as a Ray Data pipeline.

Unlike the rest of ``sapheneia`` this package imports Ray (it is the batch engine); ``import
sapheneia`` never imports it.
"""

from sapheneia.jobs.output import Location
from sapheneia.jobs.pipeline import Progress, run_pipeline
from sapheneia.jobs.spec import Engine, JobKind, JobSpec

__all__ = ["Engine", "JobKind", "JobSpec", "Location", "Progress", "run_pipeline"]
