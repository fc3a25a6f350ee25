"""Which context and horizon /api/v1 inference uses when a request leaves them out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deployments.v1_defaults import BUILTIN_HORIZON, v1_defaults
from tests.deployments.conftest import ADMIN_KEY
from tests.deployments.test_seed_contract import SEED_REQUEST


def test_precedence_request_then_initialization_then_operator_then_builtin() -> None:
    operator = {"context_len": 256, "horizon_len": 48}
    assert v1_defaults({}, {}).horizon_len == BUILTIN_HORIZON
    assert v1_defaults({}, {}).context_len is None
    assert v1_defaults(operator, {}) == v1_defaults(operator, {}, None, None)
    assert v1_defaults(operator, {}).horizon_len == 48
    assert v1_defaults(operator, {"horizon_len": 6}).horizon_len == 6
    assert v1_defaults(operator, {"horizon_len": 6}).context_len == 256
    assert v1_defaults(operator, {"horizon_len": 6}, horizon_len=3).horizon_len == 3


@pytest.fixture
def admin(data_dir: Path) -> Iterator[httpx.Client]:
    """An in-process app whose operator set a default horizon of 7 for auto-ets."""
    from fastapi.testclient import TestClient

    from deployments.api import create_api
    from deployments.options import IngressOptions
    from sapheneia.data import DataLimits
    from sapheneia.keys import digest
    from tests.deployments.local_gateway import LocalGateway

    options = IngressOptions(
        key_digests=[],
        admin_key_digests=[digest(ADMIN_KEY)],
        limits=DataLimits(data_dir=data_dir),
        request_defaults={"auto-ets": {"horizon_len": 7}},
    )
    app = create_api(LocalGateway(["auto-ets"], options))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        yield client


def horizon_served(client: httpx.Client, **parameters: int) -> int:
    params = {k: v for k, v in SEED_REQUEST["parameters"].items() if k != "horizon_len"}  # type: ignore[union-attr]
    request = {**SEED_REQUEST, "parameters": {**params, **parameters}}
    response = client.post("/api/v1/auto-ets/inference", json=request)
    assert response.status_code == 200, response.text
    return len(response.json()["prediction"]["point_forecast"][0])


def test_fields_not_sent_to_initialization_change_nothing(admin: httpx.Client) -> None:
    assert horizon_served(admin) == 7  # the operator's default
    bare = admin.post("/api/v1/auto-ets/initialization")
    assert bare.status_code == 200, bare.text
    assert bare.json()["model_info"]["horizon_len"] == 7  # not the schema's old 24
    assert horizon_served(admin) == 7
    admin.post("/api/v1/auto-ets/initialization", json={"horizon_len": 5}).raise_for_status()
    assert horizon_served(admin) == 5
    # A later call with only the context keeps the horizon it set before.
    admin.post("/api/v1/auto-ets/initialization", json={"context_len": 100}).raise_for_status()
    assert horizon_served(admin) == 5
    assert horizon_served(admin, horizon_len=3) == 3  # the request wins
