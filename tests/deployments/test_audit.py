"""The audit log: one JSON line per request, with the key's id and never the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deployments.conftest import API_KEY, assert_error
from tests.deployments.test_parsing import ROWS


def test_one_line_per_request_with_who_what_status_and_time(data_dir: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from deployments.api import create_api
    from deployments.options import IngressOptions
    from sapheneia.data import DataLimits
    from sapheneia.keys import digest
    from tests.deployments.local_gateway import LocalGateway

    log = tmp_path / "audit" / "requests.jsonl"
    options = IngressOptions(
        key_digests=[digest(API_KEY)], limits=DataLimits(data_dir=data_dir), audit_log=str(log)
    )
    client = TestClient(create_api(LocalGateway(["seasonal-naive"], options)))
    key = {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": "seasonal-naive", "horizon": 2, "data": ROWS}
    assert client.post("/api/v2/forecast", json=body, headers=key).status_code == 200
    assert_error(client.post("/api/v2/forecast", json=body), 401)
    assert_error(client.post("/api/v2/forecast", json={**body, "horizon": 0}, headers=key), 400)
    assert client.get("/health").status_code == 200

    text = log.read_text()
    assert API_KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["status"] for line in lines] == [200, 401, 400, 200]
    served, anonymous, bad, health = lines
    assert served["key_id"] == digest(API_KEY)[:12]
    assert served["route"] == "/api/v2/forecast" and served["method"] == "POST"
    assert served["model"] == "seasonal-naive" and served["series"] == 2
    assert served["duration_ms"] >= 0 and served["request_id"]
    assert anonymous["key_id"] is None and anonymous["model"] is None
    assert bad["key_id"] == served["key_id"]
    assert health["route"] == "/health"


def test_off_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    from deployments.audit import AuditLog

    assert not AuditLog("").enabled
