"""Durable shared state: counters with an expiry (rate windows, daily quotas) and small JSON values
(the lifecycle board's desired states), shared by every process of a deployment.

Two backends behind one protocol. ``FileState`` keeps everything in one SQLite file in the state
directory, for one machine (the deployments side serves it from one named Ray actor, so that every
replica sees the same counts); ``RedisState`` talks to a Redis server (``SAPHENEIA_STATE_URL=
redis://...``) that every node of a cluster reaches. Both answer ``StateUnavailable`` when the store
cannot be reached, which the API answers with 503.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sapheneia.errors import StateUnavailable

STATE_FILE_NAME = "state.sqlite3"


class StateStore(Protocol):
    """What the server needs from a store; every call is one atomic step."""

    async def incr(self, key: str, amount: int, expire_s: float) -> tuple[int, float]:
        """Add ``amount`` (may be negative) to the counter ``key``; a counter that did not exist
        starts at 0 and expires ``expire_s`` after this call. Returns the new count and the seconds
        left until it expires."""
        ...

    async def get(self, key: str) -> Any:
        """The JSON value stored under ``key``, or None."""
        ...

    async def set(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key``, with no expiry."""
        ...


class FileState:
    """The store in one SQLite file: outlives every process that opens it.

    Synchronous: one process owns it (the state actor); SQLite's own locking keeps a second opener
    (a restarted actor still closing) consistent.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL syncs the log at checkpoints, not at every commit: a commit survives the death of
        # any process, though not of the machine's power. One fsync per request's count was what
        # kept the state actor's callers waiting, seconds on a busy disk.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER, expires REAL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")

    def incr(self, key: str, amount: int, expire_s: float) -> tuple[int, float]:
        # Wall-clock time, not monotonic: expiries must mean the same after a restart.
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT value, expires FROM counters WHERE key = ?", (key,)
                ).fetchone()
                if row is None or row[1] <= now:
                    value, expires = amount, now + expire_s
                else:
                    value, expires = row[0] + amount, row[1]
                self._db.execute(
                    "INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (key, value, expires)
                )
                # Expired windows would otherwise pile up, one per key per window.
                self._db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return value, expires - now

    def get(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value)))


class LocalState:
    """``FileState`` as a ``StateStore`` in this process (one process only: the in-process app of
    the tests, a single-process tool)."""

    def __init__(self, path: Path) -> None:
        self.file = FileState(path)

    async def incr(self, key: str, amount: int, expire_s: float) -> tuple[int, float]:
        return self.file.incr(key, amount, expire_s)

    async def get(self, key: str) -> Any:
        return self.file.get(key)

    async def set(self, key: str, value: Any) -> None:
        self.file.set(key, value)


# INCRBY and the expiry in one step: two commands would leave a counter without expiry (a window
# that never ends) if the caller died between them.
_INCR = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {value, ttl}
"""


class RedisState:
    """The store in Redis: every node of a cluster reaches it, and it outlives the cluster."""

    def __init__(self, url: str, prefix: str = "sapheneia:", timeout_s: float = 2.0) -> None:
        import redis.asyncio

        self.url = url
        self.prefix = prefix
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._incr = self._redis.register_script(_INCR)

    async def incr(self, key: str, amount: int, expire_s: float) -> tuple[int, float]:
        expire_ms = max(1, int(expire_s * 1000))
        value, ttl_ms = await self._call(
            self._incr(keys=[self.prefix + key], args=[amount, expire_ms])
        )
        return int(value), int(ttl_ms) / 1000

    async def get(self, key: str) -> Any:
        raw = await self._call(self._redis.get(self.prefix + key))
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any) -> None:
        await self._call(self._redis.set(self.prefix + key, json.dumps(value)))

    async def _call(self, pending: Any) -> Any:
        import redis.exceptions

        try:
            return await pending
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            raise StateUnavailable(
                "the shared state store (Redis, SAPHENEIA_STATE_URL) cannot be reached; retry "
                "shortly"
            ) from error
