"""Bearer API keys: loaded or generated once, kept only as SHA-256 digests, compared in constant time."""

from __future__ import annotations

import hmac
import time
from collections import defaultdict, deque

from sapheneia.errors import RateLimited, Unauthorized
from sapheneia.keys import digest


class KeyChecker:
    """Checks a presented key against digests; rate-limits per key within one ingress replica."""

    def __init__(self, digests: list[str], rate_limit_per_minute: int) -> None:
        self.digests = digests
        self.rate_limit = rate_limit_per_minute
        self._calls: dict[str, deque[float]] = defaultdict(deque)

    def check(self, authorization: str | None) -> str:
        """The caller's key digest; raises ``Unauthorized`` for a missing or wrong key."""
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
        return candidate

    def _count(self, key: str) -> None:
        now = time.monotonic()
        calls = self._calls[key]
        while calls and now - calls[0] > 60:
            calls.popleft()
        if len(calls) >= self.rate_limit:
            raise RateLimited(
                f"rate limit of {self.rate_limit} requests per minute reached; retry shortly"
            )
        calls.append(now)
