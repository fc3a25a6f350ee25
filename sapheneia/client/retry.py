"""When to try a request again, and after how long: shared by ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import httpx

#: Overload (429, 503) and a proxy's timeout (504): answers that a later try can turn into a 200.
RETRY_STATUSES = frozenset({429, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``retries`` more tries after an answer in ``RETRY_STATUSES``; each waits what the
    server's ``Retry-After`` asks, or else ``backoff_s * 2**attempt`` capped at ``max_backoff_s``."""

    retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay_s(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before try ``attempt + 1`` (0 is the first retry), or None to stop."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
            return None
        asked = retry_after_s(response)
        if asked is not None:
            return asked
        return min(self.backoff_s * 2**attempt, self.max_backoff_s)


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
