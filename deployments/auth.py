"""Bearer credentials: API keys (kept only as SHA-256 digests, compared in constant time) and,
when configured, JWTs (``deployments.jwt_auth``), both answering with one ``Caller``."""

from __future__ import annotations

import hmac
import math
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from deployments.jwt_auth import JwtVerifier, looks_like_jwt
from deployments.options import IngressOptions
from sapheneia.errors import Forbidden, RateLimited, Unauthorized
from sapheneia.keys import digest


@dataclass(frozen=True)
class Caller:
    """Who is calling: the digest of their key (never the key) and whether it is an admin key.

    For a JWT, ``key_digest`` is the digest of its subject, so rate limits and job ownership follow
    the subject across tokens, and ``admin_scope`` names the scope that grants admin rights.
    """

    key_digest: str
    admin: bool
    admin_scope: str = ""

    @property
    def key_id(self) -> str:
        """A short id for logs and job ownership; reveals nothing usable about the key."""
        return self.key_digest[:12]

    def require_admin(self, action: str) -> None:
        if not self.admin and self.admin_scope:
            raise Forbidden(
                f"{action} needs a token with the '{self.admin_scope}' scope; this token may "
                "forecast, backtest and read only"
            )
        if not self.admin:
            raise Forbidden(
                f"{action} needs an admin key (SAPHENEIA_ADMIN_KEYS); this key may forecast, "
                "backtest and read only"
            )


class KeyChecker:
    """Checks a presented key against digests. Failed attempts are limited per client address in
    this replica (a guesser meets the limit on any replica it reaches); the per-key limits that
    every replica shares are ``deployments.rate_limits``'s."""

    def __init__(
        self,
        digests: Iterable[str],
        admin_digests: Iterable[str] = (),
        failures_per_minute: int = 30,
        jwt: JwtVerifier | None = None,
    ) -> None:
        self.admin_digests = list(admin_digests)
        # An admin key may do everything a forecast key may.
        self.digests = list(dict.fromkeys([*digests, *self.admin_digests]))
        self.failures_per_minute = failures_per_minute
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self.jwt = jwt

    @classmethod
    def from_options(cls, options: IngressOptions) -> KeyChecker:
        return cls(
            options.key_digests,
            options.admin_key_digests,
            options.auth_failures_per_minute,
            JwtVerifier(options.jwt) if options.jwt is not None else None,
        )

    def check(self, authorization: str | None, client: str = "") -> Caller:
        """The caller; raises ``Unauthorized`` for a missing or wrong key, and ``RateLimited`` for
        a client address that failed too often in the last minute (guessing keys); a valid JWT
        without the forecast scope raises ``Forbidden``."""
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
        presented = presented.strip()
        candidate = digest(presented)
        # Compare against every digest so the time taken does not tell which one matched.
        matched = False
        for known in self.digests:
            matched |= hmac.compare_digest(candidate, known)
        if not matched:
            # Keys first: a configured key that happens to have a JWT's shape stays a key.
            if looks_like_jwt(presented):
                return self._check_jwt(presented)
            raise Unauthorized("invalid API key")
        admin = False
        for known in self.admin_digests:
            admin |= hmac.compare_digest(candidate, known)
        return Caller(candidate, admin)

    def _check_jwt(self, token: str) -> Caller:
        if self.jwt is None:
            raise Unauthorized("invalid API key (this server accepts no JWT bearer tokens)")
        grant = self.jwt.verify(token)
        options = self.jwt.options
        admin = options.admin_scope in grant.scopes
        # An admin may do everything a forecaster may, as with keys.
        if not admin and options.forecast_scope not in grant.scopes:
            raise Forbidden(
                f"this token lacks the '{options.forecast_scope}' scope (in its "
                f"'{options.scope_claim}' claim): ask the issuer for a token with that scope"
            )
        # A NUL can be in no API key (keys come from the environment and files of lines), so a
        # subject's digest never equals a key's: a key spelt "jwt:alice" is not the subject alice.
        return Caller(digest("\0jwt\0" + grant.subject), admin, options.admin_scope)


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
