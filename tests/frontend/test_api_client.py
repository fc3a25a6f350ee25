"""Error mapping of the API client: the API's error body becomes one readable line."""

from __future__ import annotations

import httpx
import pytest

from frontend.api_client import ApiClient, ApiError, MissingKey


def client_answering(response: httpx.Response, seen: list[httpx.Request]) -> ApiClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    return ApiClient("http://api.test/", "k-123", transport=httpx.MockTransport(handle))


@pytest.mark.parametrize("key", [None, "", "   "])
def test_no_key_no_client(key: str | None) -> None:
    with pytest.raises(MissingKey, match="Sign in with your API key"):
        ApiClient("http://api.test", key)


def test_key_sent_as_bearer() -> None:
    seen: list[httpx.Request] = []
    client = client_answering(httpx.Response(200, json={"models": [{"id": "m"}]}), seen)
    assert client.models() == [{"id": "m"}]
    assert seen[0].headers["authorization"] == "Bearer k-123"
    assert str(seen[0].url) == "http://api.test/api/v2/models"


def test_api_error_body_is_readable() -> None:
    body = {"error": {"code": "unauthorized", "message": "invalid API key", "request_id": "r1"}}
    client = client_answering(httpx.Response(401, json=body), [])
    with pytest.raises(ApiError) as raised:
        client.models()
    assert str(raised.value) == (
        "Listing models failed: invalid API key The API did not accept the key (revoked?): "
        "reload the page and sign in again. (HTTP 401, unauthorized) request id r1"
    )


def test_a_page_that_is_not_the_api_is_not_echoed() -> None:
    client = client_answering(httpx.Response(502, text="<html><script>x</script></html>"), [])
    with pytest.raises(ApiError) as raised:
        client.forecast({"model": "m"}, "a.csv", b"ds,y\n")
    assert "<" not in str(raised.value)
    assert str(raised.value).startswith("Forecast with m failed. The server did not answer")


def test_unreachable_api() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = ApiClient("http://api.test", "k", transport=httpx.MockTransport(refuse))
    with pytest.raises(ApiError, match=r"cannot reach the API at http://api.test \(ConnectError\)"):
        client.backtest({})
