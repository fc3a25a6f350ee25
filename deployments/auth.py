"""Bearer API keys: loaded or generated once, kept only as SHA-256 digests, compared in constant time."""

from __future__ import annotations

import hmac
import math
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from sapheneia.errors import Forbidden, RateLimited, Unauthorized
from sapheneia.keys import digest


@dataclass(frozen=True)
class Caller:
    """Who is calling: the digest of their key (never the key) and whether it is an admin key."""

    key_digest: str
    admin: bool

    @property
    def key_id(self) -> str:
        """A short id for logs and job ownership; reveals nothing usable about the key."""
        return self.key_digest[:12]

    def require_admin(self, action: str) -> None:
        if not self.admin:
            raise Forbidden(
                f"{action} needs an admin key (SAPHENEIA_ADMIN_KEYS); this key may forecast, "
                "backtest and read only"
            )


class KeyChecker:
    """Checks a presented key against digests; rate-limits per key within one ingress replica."""

    def __init__(
        self,
        digests: Iterable[str],
        rate_limit_per_minute: int,
        admin_digests: Iterable[str] = (),
        failures_per_minute: int = 30,
    ) -> None:
        self.admin_digests = list(admin_digests)
        # An admin key may do everything a forecast key may.
        self.digests = list(dict.fromkeys([*digests, *self.admin_digests]))
        self.rate_limit = rate_limit_per_minute
        self.failures_per_minute = failures_per_minute
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def check(self, authorization: str | None, client: str = "") -> Caller:
        """The caller; raises ``Unauthorized`` for a missing or wrong key, and ``RateLimited`` for
        a client address that failed too often in the last minute (guessing keys)."""
        _window(self._failures[client], self.failures_per_minute, "failed authentications", 60)
        try:
            return self._check(authorization)
        except Unauthorized:
            self._failures[client].append(time.monotonic())
            raise

    def _check(self, authorization: str | None) -> Caller:
        if not authorization:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized("malformed Authorization header: send 'Authorization: Bearer <key>'")
        candidate = digest(presented.strip())
        # Compare against every digest so the time taken does not tell which one matched.
        matched = False
        for known in self.digests:
            matched |= hmac.compare_digest(candidate, known)
        if not matched:
            raise Unauthorized("invalid API key")
        self._count(candidate)
        admin = False
        for known in self.admin_digests:
            admin |= hmac.compare_digest(candidate, known)
        return Caller(candidate, admin)

    def _count(self, key: str) -> None:
        _window(self._calls[key], self.rate_limit, "requests", 60)
        self._calls[key].append(time.monotonic())


def _window(events: deque[float], limit: int, what: str, period_s: float) -> None:
    """Raise ``RateLimited`` when ``events`` holds ``limit`` within the last ``period_s``."""
    now = time.monotonic()
    while events and now - events[0] > period_s:
        events.popleft()
    if len(events) >= limit:
        wait_s = max(1, math.ceil(period_s - (now - events[0])))
        error = RateLimited(f"rate limit of {limit} {what} per minute reached; retry in {wait_s} s")
        error.retry_after_s = wait_s
        raise error
