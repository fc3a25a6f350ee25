"""The UI's own routes over HTTP against the real service: nothing is taken without a signed-in key.

A client that never signed in, or signed in with a wrong key, gets 401 from every route that takes
data, and the UI stores nothing; after sign-in, uploads past the cap get 413; the key never comes
back to the client.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.frontend.conftest import UPLOAD_CAP, Service

pytestmark = pytest.mark.cluster

SMALL_CSV = b"ds,y\n2020-01-01,1\n2020-02-01,2\n"


@pytest.fixture
def visitor(service: Service) -> Iterator[httpx.Client]:
    """A client without the login cookie; the recorder cleared."""
    service.recorder.calls.clear()
    with httpx.Client(base_url=service.ui_url, timeout=30) as client:
        yield client


@pytest.fixture
def signed_in(service: Service, visitor: httpx.Client) -> httpx.Client:
    answer = visitor.post("login", data={"username": "anyone", "password": service.key})
    assert answer.status_code == 200, answer.text
    return visitor


def upload(client: httpx.Client, content: bytes) -> httpx.Response:
    return client.post("gradio_api/upload", files={"files": ("data.csv", content, "text/csv")})


def test_a_direct_upload_without_sign_in_is_refused(
    service: Service, visitor: httpx.Client
) -> None:
    before = service.stored_files()
    answer = upload(visitor, SMALL_CSV)
    assert answer.status_code == 401
    assert answer.json()["detail"]["error"] == "Not authenticated"
    assert service.stored_files() == before
    assert service.recorder.calls == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "config"),
        ("POST", "gradio_api/queue/join"),
        ("GET", "gradio_api/queue/data?session_hash=x"),
        ("GET", "gradio_api/file=/etc/hostname"),
        ("GET", "gradio_api/info"),
    ],
)
def test_the_app_answers_nothing_without_sign_in(
    visitor: httpx.Client, method: str, path: str
) -> None:
    assert visitor.request(method, path, json={}).status_code == 401


def test_a_wrong_key_gets_no_session(service: Service, visitor: httpx.Client) -> None:
    answer = visitor.post("login", data={"username": "anyone", "password": "not-the-key"})
    assert answer.status_code == 400
    assert not visitor.cookies
    assert upload(visitor, SMALL_CSV).status_code == 401
    assert service.recorder.calls == [("GET", "/api/v2/models", "Bearer not-the-key")]


def test_signed_in_uploads_are_capped(service: Service, signed_in: httpx.Client) -> None:
    before = service.stored_files()
    too_big = upload(signed_in, b"x" * (UPLOAD_CAP + 1))
    assert too_big.status_code == 413
    assert f"maximum allowed size of {UPLOAD_CAP} bytes" in too_big.text
    assert service.stored_files() == before
    fits = upload(signed_in, SMALL_CSV)
    assert fits.status_code == 200, fits.text
    assert len(service.stored_files() - before) == 1


def test_the_key_never_comes_back(service: Service, signed_in: httpx.Client) -> None:
    answers = [
        signed_in.get(path) for path in ("", "config", "gradio_api/token", "gradio_api/info")
    ]
    assert [a.status_code for a in answers] == [200] * 4
    config = answers[1].json()
    assert config["username"] and config["username"] != "anyone"  # the random session handle
    for answer in answers:
        assert service.key not in answer.text
    assert all(service.key not in value for value in signed_in.cookies.values())


def test_sign_out_drops_the_session(signed_in: httpx.Client) -> None:
    assert upload(signed_in, SMALL_CSV).status_code == 200
    cookies = dict(signed_in.cookies)
    signed_in.get("logout")
    assert upload(signed_in, SMALL_CSV).status_code == 401
    signed_in.cookies.update(cookies)  # the old cookie, replayed: its session is gone
    assert upload(signed_in, SMALL_CSV).status_code == 401
