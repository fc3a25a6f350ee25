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
    ) -> None:
        self.admin_digests = list(admin_digests)
        # An admin key may do everything a forecast key may.
        self.digests = list(dict.fromkeys([*digests, *self.admin_digests]))
        self.rate_limit = rate_limit_per_minute
        self._calls: dict[str, deque[float]] = defaultdict(deque)

    def check(self, authorization: str | None) -> Caller:
        """The caller; raises ``Unauthorized`` for a missing or wrong key."""
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
        now = time.monotonic()
        calls = self._calls[key]
        while calls and now - calls[0] > 60:
            calls.popleft()
        if len(calls) >= self.rate_limit:
            wait_s = max(1, math.ceil(60 - (now - calls[0])))
            error = RateLimited(
                f"rate limit of {self.rate_limit} requests per minute reached; retry in {wait_s} s"
            )
            error.retry_after_s = wait_s
            raise error
        calls.append(now)
