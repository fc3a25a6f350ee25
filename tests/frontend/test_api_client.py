"""Error mapping of the API client: the API's error body becomes one readable line."""

from __future__ import annotations

from pathlib import Path

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


def test_a_job_file_is_sent_as_a_multipart_upload(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    client = client_answering(httpx.Response(202, json={"job_id": "job-1"}), seen)
    path = tmp_path / "big.parquet"
    path.write_bytes(b"PAR1" + b"x" * 100_000)
    with path.open("rb") as upload:
        assert client.submit_job({"kind": "forecast"}, ("big.parquet", upload)) == {
            "job_id": "job-1"
        }
    sent = seen[0]
    assert (sent.method, sent.url.path) == ("POST", "/api/v2/jobs")
    body = sent.read()
    assert b'name="request"' in body and b'{"kind": "forecast"}' in body
    assert b'filename="big.parquet"' in body and b"PAR1" + b"x" * 100_000 in body


def test_a_result_is_streamed_to_disk(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    chunks = [b"a" * 1000, b"b" * 10]
    client = client_answering(httpx.Response(200, content=iter(chunks)), seen)
    target = tmp_path / "job-1.csv"
    assert client.download_result("job-1", "csv", target) == 1010
    assert target.read_bytes() == b"".join(chunks)
    assert str(seen[0].url) == "http://api.test/api/v2/jobs/job-1/result?format=csv"


def test_a_result_that_is_not_ready_is_an_api_error(tmp_path: Path) -> None:
    body = {"error": {"code": "job_not_ready", "message": "job 'job-1' is running; wait",
                      "request_id": "r2"}}  # fmt: skip
    client = client_answering(httpx.Response(409, json=body), [])
    with pytest.raises(ApiError) as raised:
        client.download_result("job-1", "parquet", tmp_path / "job-1.parquet")
    assert str(raised.value) == (
        "Downloading the result failed: job 'job-1' is running; wait (HTTP 409, job_not_ready) "
        "request id r2"
    )
    assert not (tmp_path / "job-1.parquet").exists()


@pytest.mark.parametrize("job_id", ["", "../models", "job-1/result", "job 1", "x" * 65])
def test_only_job_ids_reach_a_url(job_id: str) -> None:
    seen: list[httpx.Request] = []
    client = client_answering(httpx.Response(200, json={}), seen)
    for call in (client.job, client.cancel_job):
        with pytest.raises(ApiError, match="Pick a job from the list first"):
            call(job_id)
    assert seen == []


def test_cancel_and_list_jobs() -> None:
    seen: list[httpx.Request] = []
    client = client_answering(httpx.Response(200, json={"jobs": [{"job_id": "job-1"}]}), seen)
    assert client.jobs() == [{"job_id": "job-1"}]
    client.cancel_job("job-1")
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/api/v2/jobs"), ("DELETE", "/api/v2/jobs/job-1"),
    ]  # fmt: skip
