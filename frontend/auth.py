"""Sign-in: the Sapheneia API key is the password of Gradio's login form, and the API checks it.

How the key travels. The browser posts it once, to Gradio's ``/login``. Gradio awaits
``KeyCheck.check``, which asks the API (``GET /api/v2/models`` with the key as Bearer), then sets
an http-only cookie holding a random token and records ``tokens[token] = username``. ``Sessions``
is that ``tokens`` map: it files the key under a fresh random handle, in this replica's memory
only, and gives Gradio the handle as the user name. Gradio derives ``gr.Request.username`` from
the cookie on every request, so a handler gets the handle and asks ``Sessions.key_for`` for the key.
Gradio copies the user name into the page's config: that is the handle, never the key, and the
handle is worth nothing without the cookie.

Every Gradio route that takes data (page config, ``/upload``, ``queue/join``, ``file=``) requires
the cookie; a sign-in unused for ``idle_s`` is refused and its session data dropped.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar

import httpx

logger = logging.getLogger("ray.serve")

# A key the API accepted is trusted this long for a new sign-in (a page reload, a second tab)
# without asking the API again; short, so that a revoked key stops signing in soon.
VALID_KEY_CACHE_S = 60.0
CHECK_TIMEOUT_S = 10.0

# The key that ``KeyCheck.check`` just accepted, for ``Sessions.__setitem__``: Gradio's login route
# awaits the check and then stores the token in the same task, so the context carries it there.
_accepted_key: ContextVar[str | None] = ContextVar("accepted_key", default=None)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyCheck:
    """Gradio's ``auth`` callable: the user name is ignored, the password is the API key."""

    def __init__(
        self,
        api_base_url: str,
        *,
        failures_per_minute: int,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.failures_per_minute = failures_per_minute
        self._transport = transport
        self._clock = clock
        self._valid_until: dict[str, float] = {}
        self._failures: deque[float] = deque()

    async def check(self, username: str, password: str) -> bool:
        """True when the API accepts ``password`` as a key; ``username`` is not checked."""
        key = password.strip()
        if not key:
            return False
        now = self._clock()
        self._valid_until = {d: t for d, t in self._valid_until.items() if t > now}
        if digest(key) in self._valid_until:
            _accepted_key.set(key)
            return True
        while self._failures and now - self._failures[0] > 60:
            self._failures.popleft()
        # The API counts failed keys per client address, and every sign-in comes from this
        # replica's address: past its limit it would refuse every user of the UI for a minute.
        if len(self._failures) >= self.failures_per_minute:
            logger.warning("UI sign-in: too many wrong keys in the last minute; refusing sign-ins")
            return False
        if not await self._accepted_by_api(key):
            self._failures.append(now)
            return False
        self._valid_until[digest(key)] = now + VALID_KEY_CACHE_S
        _accepted_key.set(key)
        return True

    async def _accepted_by_api(self, key: str) -> bool:
        try:
            async with httpx.AsyncClient(
                base_url=self.api_base_url, timeout=CHECK_TIMEOUT_S, transport=self._transport
            ) as client:
                answer = await client.get(
                    "/api/v2/models", headers={"Authorization": f"Bearer {key}"}
                )
        except httpx.HTTPError as error:
            logger.warning("UI sign-in: cannot reach the API (%s)", type(error).__name__)
            return False
        if answer.status_code not in (200, 401):
            logger.warning("UI sign-in: the API answered %s", answer.status_code)
        return answer.status_code == 200


class Sessions(dict[str, str]):
    """Gradio's ``App.tokens`` (cookie token -> user name) holding each sign-in's key by handle.

    Gradio reads it with ``get`` on every request, writes it on sign-in and deletes on sign-out.
    ``sweep`` drops sign-ins idle for ``idle_s`` and returns the Gradio sessions (page session
    hashes) they used, whose data the caller then deletes.
    """

    def __init__(self, idle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()  # handlers run in Gradio's worker threads
        self._keys: dict[str, str] = {}  # handle -> key
        self._last_seen: dict[str, float] = {}  # token -> time of its last request
        self._pages: dict[str, set[str]] = {}  # handle -> Gradio session hashes
        self._ended: set[str] = set()  # session hashes of sign-ins dropped since the last sweep

    def __setitem__(self, token: str, _username: str) -> None:
        key = _accepted_key.get()
        _accepted_key.set(None)
        if key is None:  # not a sign-in KeyCheck accepted: keep nothing, the cookie opens nothing
            return
        handle = secrets.token_urlsafe(16)
        with self._lock:
            super().__setitem__(token, handle)
            self._keys[handle] = key
            self._last_seen[token] = self._clock()

    def get(self, token: str, default: str | None = None) -> str | None:  # type: ignore[override]
        with self._lock:
            handle = super().get(token)
            if handle is None:
                return default
            now = self._clock()
            if now - self._last_seen[token] > self.idle_s:
                self._drop(token)  # its pages' data goes at the next sweep
                return default
            self._last_seen[token] = now
            return handle

    def __delitem__(self, token: str) -> None:
        with self._lock:
            self._drop(token)

    def key_for(self, handle: str | None) -> str | None:
        """The key of a live sign-in, from ``gr.Request.username``."""
        with self._lock:
            return self._keys.get(handle) if handle else None

    def attach(self, handle: str | None, session_hash: str | None) -> None:
        """Remember that a page session belongs to this sign-in, to drop its data with it."""
        with self._lock:
            if handle in self._keys and session_hash:
                self._pages.setdefault(handle, set()).add(session_hash)

    def sweep(self) -> set[str]:
        """Drop idle sign-ins; the session hashes of every sign-in dropped since the last sweep."""
        with self._lock:
            now = self._clock()
            for token in [t for t, seen in self._last_seen.items() if now - seen > self.idle_s]:
                self._drop(token)
            ended, self._ended = self._ended, set()
            return ended

    def _drop(self, token: str) -> None:
        handle = super().pop(token, None)
        self._last_seen.pop(token, None)
        if handle is not None:
            self._keys.pop(handle, None)
            self._ended |= self._pages.pop(handle, set())
