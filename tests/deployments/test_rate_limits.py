"""Per-key limits in requests, series and series per day, in process over the file store: the
counting itself, and the 429s and headers the API answers with. No Ray (the served, shared counter
is tests/deployments/test_shared_state.py's)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deployments.api import create_api
from deployments.options import IngressOptions
from deployments.rate_limits import KeyLimits, RateLimits, parse_key_limits
from deployments.state_store import StateOptions
from sapheneia.data import DataLimits
from sapheneia.errors import LimitExceeded, QuotaExceeded, RateLimited
from sapheneia.keys import digest
from sapheneia.state import LocalState
from tests.deployments.conftest import API_KEY, OTHER_KEY, assert_error
from tests.deployments.local_gateway import LocalGateway
from tests.deployments.test_unified import rows

KEY = digest(API_KEY)


def limits(tmp_path: Path, **kwargs: int) -> RateLimits:
    return RateLimits(LocalState(tmp_path / "state.sqlite3"), KeyLimits(**kwargs))


def test_series_are_counted_per_series_not_per_request(tmp_path: Path) -> None:
    counted = limits(tmp_path, series_per_minute=10)

    async def steps() -> None:
        await counted.admit_series(KEY, 4)
        await counted.admit_series(KEY, 6)
        with pytest.raises(RateLimited, match="10 series per minute") as refused:
            await counted.admit_series(KEY, 1)
        assert refused.value.headers is not None
        assert refused.value.headers["X-RateLimit-Limit"] == "10"
        assert refused.value.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(refused.value.headers["X-RateLimit-Reset"]) <= 60
        assert refused.value.retry_after_s == int(refused.value.headers["X-RateLimit-Reset"])
        await counted.admit_series(digest(OTHER_KEY), 10)  # another key, its own budget
        # One request over the whole minute's budget can never pass: 413 says to split it.
        with pytest.raises(LimitExceeded, match="has 11 series, over this key's limit of 10"):
            await counted.admit_series(digest("third"), 11)

    asyncio.run(steps())


def test_the_daily_quota_survives_a_restart_and_refusals_cost_nothing(tmp_path: Path) -> None:
    async def day(series: list[int]) -> list[str]:
        # A fresh RateLimits over the same file each time: an ingress that restarted.
        counted = limits(tmp_path, series_per_minute=100, daily_series=10)
        outcomes = []
        for n in series:
            try:
                await counted.admit_series(KEY, n)
                outcomes.append("ok")
            except QuotaExceeded as error:
                outcomes.append(error.code)
        return outcomes

    assert asyncio.run(day([6])) == ["ok"]
    assert asyncio.run(day([5, 4, 1])) == ["quota_exceeded", "ok", "quota_exceeded"]
    # The minute's counter gave back the refused requests' series: 10 counted, not 16.
    minute = asyncio.run(LocalState(tmp_path / "state.sqlite3").incr(f"series:{KEY}", 0, 60))
    assert minute[0] == 10


def test_limits_per_key_override_the_defaults(tmp_path: Path) -> None:
    overrides = parse_key_limits(f'{{"{KEY[:12]}": {{"requests_per_minute": 2}}}}')
    counted = RateLimits(
        LocalState(tmp_path / "s.sqlite3"), KeyLimits(requests_per_minute=5), overrides
    )
    assert counted.limits_of(KEY) == KeyLimits(requests_per_minute=2)
    assert counted.limits_of(digest(OTHER_KEY)) == KeyLimits(requests_per_minute=5)
    with pytest.raises(ValueError, match="not a key id"):
        parse_key_limits(f'{{"{API_KEY}": {{"requests_per_minute": 2}}}}')
    with pytest.raises(ValueError, match="SAPHENEIA_KEY_LIMITS is not valid"):
        parse_key_limits('{"0123456789ab": {"requests": 2}}')


def app(tmp_path: Path, data_dir: Path, **options: int) -> TestClient:
    ingress = IngressOptions(
        key_digests=[KEY, digest(OTHER_KEY)],
        limits=DataLimits(data_dir=data_dir),
        state=StateOptions(path=str(tmp_path / "state.sqlite3")),
        **options,
    )
    gateway = LocalGateway(["seasonal-naive"], ingress)
    return TestClient(create_api(gateway), headers={"Authorization": f"Bearer {API_KEY}"})


def test_http_answers_carry_the_rate_headers_and_429_in_the_error_shape(
    tmp_path: Path, data_dir: Path
) -> None:
    client = app(tmp_path, data_dir, rate_limit_per_minute=2)
    first = client.get("/api/v2/models")
    assert first.status_code == 200
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (
        "2",
        "1",
    )
    assert client.get("/api/v2/models").headers["x-ratelimit-remaining"] == "0"
    refused = client.get("/api/v2/models")
    assert (
        "rate limit of 2 requests per minute"
        in assert_error(refused, 429, "rate_limited")["message"]
    )
    assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]
    assert refused.headers["x-ratelimit-remaining"] == "0"


def test_a_forecast_is_charged_its_series(tmp_path: Path, data_dir: Path) -> None:
    client = app(tmp_path, data_dir, series_per_minute=5)
    body = {"model": "seasonal-naive", "horizon": 3, "data": rows({"a": 1, "b": 2, "c": 3})}
    assert client.post("/api/v2/forecast", json=body).status_code == 200
    refused = client.post("/api/v2/forecast", json=body)  # 3 + 3 > 5
    assert "5 series per minute" in assert_error(refused, 429, "rate_limited")["message"]
    assert refused.headers["x-ratelimit-limit"] == "5"
    assert refused.headers["x-ratelimit-remaining"] == "2"
    two = {**body, "data": rows({"a": 1, "b": 2})}
    assert client.post("/api/v2/forecast", json=two).status_code == 200
