"""Sign-in bookkeeping: the key is checked by the API, kept by handle, and forgotten when idle."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from frontend.auth import VALID_KEY_CACHE_S, KeyCheck, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def api_accepting(key: str, seen: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v2/models"
        seen.append(request.headers["authorization"])
        ok = request.headers["authorization"] == f"Bearer {key}"
        return httpx.Response(200 if ok else 401, json={"models": []})

    return httpx.MockTransport(answer)


def sign_in(check: KeyCheck, sessions: Sessions, token: str, key: str) -> bool:
    """What Gradio's /login does: await the check, then store the token in the same task."""

    async def login() -> bool:
        accepted = await check.check("anyone", key)
        if accepted:
            sessions[token] = "anyone"
        return accepted

    return asyncio.run(login())


def test_the_key_is_kept_under_a_random_handle_not_as_the_user_name() -> None:
    seen: list[str] = []
    check = KeyCheck("http://api.test", failures_per_minute=5, transport=api_accepting("k1", seen))
    sessions = Sessions(idle_s=60)
    assert sign_in(check, sessions, "token-a", "k1")
    handle = sessions.get("token-a")
    assert handle not in (None, "anyone", "k1")
    assert sessions.key_for(handle) == "k1"
    assert seen == ["Bearer k1"]
    assert sessions.key_for("k1") is None and sessions.key_for(None) is None


def test_a_token_stored_without_an_accepted_key_opens_nothing() -> None:
    sessions = Sessions(idle_s=60)
    sessions["token-a"] = "anyone"
    assert sessions.get("token-a") is None


def test_wrong_and_blank_keys_are_refused() -> None:
    seen: list[str] = []
    check = KeyCheck("http://api.test", failures_per_minute=5, transport=api_accepting("k1", seen))
    sessions = Sessions(idle_s=60)
    assert not sign_in(check, sessions, "t", "k2")
    assert not sign_in(check, sessions, "t", "   ")
    assert sessions.get("t") is None
    assert seen == ["Bearer k2"]  # a blank key is refused without asking


def test_an_accepted_key_is_trusted_briefly() -> None:
    seen: list[str] = []
    clock = Clock()
    check = KeyCheck(
        "http://api.test", failures_per_minute=5, transport=api_accepting("k1", seen), clock=clock
    )
    sessions = Sessions(idle_s=600, clock=clock)
    assert sign_in(check, sessions, "t1", "k1") and sign_in(check, sessions, "t2", "k1")
    assert seen == ["Bearer k1"]
    clock.now += VALID_KEY_CACHE_S + 1
    assert sign_in(check, sessions, "t3", "k1")
    assert seen == ["Bearer k1"] * 2


def test_wrong_keys_past_the_budget_are_not_passed_to_the_api() -> None:
    seen: list[str] = []
    clock = Clock()
    check = KeyCheck(
        "http://api.test", failures_per_minute=3, transport=api_accepting("k1", seen), clock=clock
    )
    sessions = Sessions(idle_s=600, clock=clock)
    for attempt in range(5):
        assert not sign_in(check, sessions, "t", f"guess-{attempt}")
    assert seen == ["Bearer guess-0", "Bearer guess-1", "Bearer guess-2"]
    clock.now += 61
    assert sign_in(check, sessions, "t", "k1")


def test_an_unreachable_api_refuses_the_sign_in() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    check = KeyCheck(
        "http://api.test", failures_per_minute=5, transport=httpx.MockTransport(refuse)
    )
    assert not sign_in(check, Sessions(idle_s=60), "t", "k1")


@pytest.mark.parametrize("ended_by", ["idle", "sign-out"])
def test_an_ended_sign_in_forgets_its_key_and_its_pages(ended_by: str) -> None:
    clock = Clock()
    check = KeyCheck("http://api.test", failures_per_minute=5, transport=api_accepting("k1", []))
    sessions = Sessions(idle_s=30, clock=clock)
    assert sign_in(check, sessions, "t1", "k1") and sign_in(check, sessions, "t2", "k1")
    mine, other = sessions.get("t1"), sessions.get("t2")
    sessions.attach(mine, "page-1")
    sessions.attach(mine, "page-2")
    sessions.attach(other, "page-3")
    clock.now += 20
    assert sessions.get("t2") == other  # a request keeps a sign-in alive
    assert sessions.sweep() == set()
    if ended_by == "idle":
        clock.now += 11  # t1: 31 s without a request; t2: 11 s
        assert sessions.get("t1") is None  # refused at once, before any sweep
    else:
        del sessions["t1"]  # Gradio's /logout
    assert sessions.key_for(mine) is None
    assert sessions.sweep() == {"page-1", "page-2"}
    assert sessions.sweep() == set()
    assert sessions.key_for(other) == "k1"
    assert "t1" not in sessions and sessions.get("t2") == other
