"""The shared state store's two backends, the same contract each: a SQLite file and a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sapheneia.errors import StateUnavailable
from sapheneia.state import LocalState, RedisState, StateStore
from tests.redis_server import free_port, redis_server


@pytest.fixture(params=["file", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """A factory of fresh clients of one store: a second client is a restarted process."""
    if request.param == "file":
        yield lambda: LocalState(tmp_path / "state.sqlite3")
    else:
        with redis_server(tmp_path) as url:
            yield lambda: RedisState(url)


def run(coroutine: Any) -> Any:
    # In a thread of its own: a test earlier in the session (the browser tests' Playwright) may
    # leave an event loop running in the main thread, where asyncio.run refuses to start.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_counter_adds_up_and_expires_after_its_window(open_store: Callable[[], Any]) -> None:
    async def steps() -> None:
        store: StateStore = open_store()
        assert (await store.incr("c", 3, 60))[0] == 3
        value, left = await store.incr("c", 4, 60)
        assert value == 7 and 0 < left <= 60
        assert (await store.incr("c", -4, 60))[0] == 3  # a refusal gives its units back
        assert (await store.incr("other", 1, 60))[0] == 1
        assert (await store.incr("short", 5, 0.2))[0] == 5
        await asyncio.sleep(0.5)
        assert (await store.incr("short", 1, 0.2))[0] == 1  # a new window

    run(steps())


def test_counts_from_many_clients_at_once_are_all_counted(open_store: Callable[[], Any]) -> None:
    async def steps() -> int:
        stores = [open_store() for _ in range(4)]
        await asyncio.gather(*(s.incr("n", 1, 60) for s in stores for _ in range(25)))
        return int((await stores[0].incr("n", 0, 60))[0])

    assert run(steps()) == 100


def test_values_and_counts_outlive_the_client(open_store: Callable[[], Any]) -> None:
    value = {"state": "shutdown", "generation": 2, "settings": {"horizon_len": 12}}

    async def write() -> None:
        store = open_store()
        await store.set("desired:m", value)
        await store.incr("daily", 300_000, 3600)

    async def read() -> tuple[Any, Any, int]:
        store = open_store()
        return (
            await store.get("desired:m"),
            await store.get("absent"),
            (await store.incr("daily", 0, 3600))[0],
        )

    run(write())
    assert run(read()) == (value, None, 300_000)


def test_redis_outlives_a_restart_of_the_server(tmp_path: Path) -> None:
    port = free_port()
    with redis_server(tmp_path, port) as url:
        run(RedisState(url).set("desired:m", {"state": "shutdown"}))
    with redis_server(tmp_path, port) as url:
        assert run(RedisState(url).get("desired:m")) == {"state": "shutdown"}


def test_an_unreachable_redis_is_state_unavailable() -> None:
    store = RedisState(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    with pytest.raises(StateUnavailable, match="cannot be reached") as raised:
        run(store.incr("c", 1, 60))
    assert (raised.value.status, raised.value.code) == (503, "state_unavailable")
