"""A model without weights answers 503 with the fix; every other model keeps serving."""

from __future__ import annotations

import httpx

from tests.deployments.conftest import assert_error
from tests.deployments.test_seed_contract import SEED_REQUEST


def test_health_reports_unavailable_and_the_listing_gives_the_fix(
    anonymous: httpx.Client, client: httpx.Client
) -> None:
    models = anonymous.get("/health").json()["models"]
    assert models["timesfm-2.5"]["status"] == "unavailable"
    assert models["auto-ets"]["status"] == "ready"
    listing = {m["id"]: m for m in client.get("/api/v2/models").json()["models"]}
    reason = listing["timesfm-2.5"]["reason"]
    assert "sapheneia pull timesfm-2.5" in reason
    # The fix without the server's layout: the configured local path is not shown.
    assert "/nonexistent" not in reason


def test_unavailable_model_answers_503_and_others_still_serve(client: httpx.Client) -> None:
    response = client.post("/api/v1/timesfm-2.5/inference", json=SEED_REQUEST)
    error = assert_error(response, 503, "model_unavailable")
    assert "sapheneia pull" in error["message"]
    assert client.post("/api/v1/auto-ets/inference", json=SEED_REQUEST).status_code == 200
