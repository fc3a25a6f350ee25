"""The Python client of the v2 API: ``Client`` and its asyncio twin ``AsyncClient``.

Error answers raise ``SapheneiaAPIError`` subclasses that are also the library's own error classes,
so ``except sapheneia.errors.DataError`` catches a remote data error too.
"""

from sapheneia.client.aio import AsyncClient
from sapheneia.client.errors import ERROR_CLASSES, SapheneiaAPIError
from sapheneia.client.jobs import AsyncJob, Job
from sapheneia.client.results import Backtest, JobState
from sapheneia.client.retry import RetryPolicy
from sapheneia.client.sync import Client

__all__ = [
    "ERROR_CLASSES",
    "AsyncClient",
    "AsyncJob",
    "Backtest",
    "Client",
    "Job",
    "JobState",
    "RetryPolicy",
    "SapheneiaAPIError",
]
