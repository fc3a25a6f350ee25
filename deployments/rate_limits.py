"""Rate limits and quotas per key, counted in the shared state store so that every ingress replica
adds to the same counts: requests per minute, series per minute, series per UTC day.

A minute starts at a key's first request in it (the counter's expiry), so a burst is judged whole,
never split by a wall-clock boundary. A refused request gives its units back: a 429 costs nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from sapheneia.errors import LimitExceeded, QuotaExceeded, RateLimited
from sapheneia.state import StateStore

MINUTE_S = 60.0


class KeyLimits(BaseModel):
    """The limits of one key; 0 turns a limit off."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int = Field(default=600, ge=0)
    series_per_minute: int = Field(default=0, ge=0)
    daily_series: int = Field(default=0, ge=0, description="Series per UTC day.")


class KeyLimitOverrides(BaseModel):
    """One entry of ``SAPHENEIA_KEY_LIMITS``: what it leaves out follows the global settings."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=0)
    series_per_minute: int | None = Field(default=None, ge=0)
    daily_series: int | None = Field(default=None, ge=0)


def parse_key_limits(text: str) -> dict[str, KeyLimitOverrides]:
    """``SAPHENEIA_KEY_LIMITS``: JSON by key id (the 12 hex characters the audit log shows);
    anything else stops the start with what is wrong."""
    if not text.strip():
        return {}
    try:
        parsed = TypeAdapter(dict[str, KeyLimitOverrides]).validate_python(json.loads(text))
    except ValueError as error:
        raise ValueError(f"SAPHENEIA_KEY_LIMITS is not valid: {error}") from None
    for key_id in parsed:
        if len(key_id) != 12 or any(c not in "0123456789abcdef" for c in key_id):
            raise ValueError(
                f"SAPHENEIA_KEY_LIMITS: '{key_id[:16]}' is not a key id; a key id is the first 12 "
                "hex characters of the key's SHA-256 (the audit log's key_id), never the key"
            )
    return parsed


@dataclass(frozen=True)
class Window:
    """One counter after a request: its limit, what is left, and seconds until it resets."""

    limit: int
    used: int
    reset_s: float

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "X-RateLimit-Reset": str(max(1, math.ceil(self.reset_s))),
        }


def seconds_to_midnight_utc(now: dt.datetime) -> float:
    tomorrow = (now + dt.timedelta(days=1)).date()
    midnight = dt.datetime.combine(tomorrow, dt.time(), tzinfo=dt.UTC)
    return (midnight - now).total_seconds()


class RateLimits:
    """Counts per key digest in ``store``; ``per_key`` overrides ``default`` by key id."""

    def __init__(
        self,
        store: StateStore,
        default: KeyLimits,
        per_key: dict[str, KeyLimitOverrides] | None = None,
    ) -> None:
        self.store = store
        self.default = default
        self.per_key = per_key or {}

    def limits_of(self, key_digest: str) -> KeyLimits:
        override = self.per_key.get(key_digest[:12])
        if override is None:
            return self.default
        return self.default.model_copy(update=override.model_dump(exclude_none=True))

    async def admit_request(self, key_digest: str) -> Window | None:
        """Count one request; ``RateLimited`` (with its headers) over the per-minute limit."""
        limit = self.limits_of(key_digest).requests_per_minute
        if not limit:
            return None
        return await self._take(f"requests:{key_digest}", 1, limit, MINUTE_S, "requests")

    async def admit_series(self, key_digest: str, series: int) -> None:
        """Count a parsed request's series against the per-minute limit and the daily quota."""
        limits = self.limits_of(key_digest)
        for limit, what in (
            (limits.series_per_minute, "series per minute (SAPHENEIA_RATE_LIMIT_SERIES)"),
            (limits.daily_series, "series per day (SAPHENEIA_DAILY_SERIES_QUOTA)"),
        ):
            if limit and series > limit:
                # No wait makes this request fit: say so, rather than invite endless retries.
                raise LimitExceeded(
                    f"this request has {series} series, over this key's limit of {limit} {what}; "
                    "send fewer series per request"
                )
        taken: list[str] = []
        try:
            if limits.series_per_minute:
                key = f"series:{key_digest}"
                await self._take(key, series, limits.series_per_minute, MINUTE_S, "series")
                taken.append(key)
            if limits.daily_series:
                now = dt.datetime.now(dt.UTC)
                key = f"daily:{key_digest}:{now.date().isoformat()}"
                await self._take(
                    key, series, limits.daily_series, seconds_to_midnight_utc(now), "daily"
                )
        except RateLimited:
            for key in taken:  # the minute's units go back when the day's quota refuses
                await self.store.incr(key, -series, MINUTE_S)
            raise

    async def _take(self, key: str, amount: int, limit: int, period_s: float, what: str) -> Window:
        used, reset_s = await self.store.incr(key, amount, period_s)
        if used <= limit:
            return Window(limit, used, reset_s)
        await self.store.incr(key, -amount, period_s)
        window = Window(limit, used - amount, reset_s)
        wait_s = max(1, math.ceil(reset_s))
        error: RateLimited
        if what == "daily":
            error = QuotaExceeded(
                f"daily quota of {limit} series reached ({used - amount} used today); it renews "
                f"at midnight UTC, in {wait_s} s"
            )
        else:
            error = RateLimited(
                f"rate limit of {limit} {what} per minute reached; retry in {wait_s} s"
            )
        error.retry_after_s = wait_s
        error.headers = window.headers()
        raise error
