"""The ingress's remote calls per request, counted on the real ``Ingress`` in process: its lifecycle
board and model handles are stand-ins that count what they are asked (no Ray)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from deployments.lifecycle import DesiredState
from deployments.options import IngressOptions
from sapheneia.blocks import TaskBlock
from sapheneia.config import load_model_configs
from sapheneia.data import DataLimits
from sapheneia.keys import digest
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter
from sapheneia.tasks import ForecastTask
from tests.deployments.conftest import API_KEY
from tests.deployments.test_seed_contract import SEED_REQUEST

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["auto-ets", "seasonal-naive"]


class Board:
    """The lifecycle board as the ingress reaches it (``BoardClient``), its ``views`` counted: every
    model ready on one replica."""

    def __init__(self, adapters: dict[str, ModelAdapter]) -> None:
        self.adapters = adapters
        self.calls = 0

    async def call(self, method: str, models: list[str]) -> dict[str, Any]:
        assert method == "views", method
        self.calls += 1
        report = {"status": "ready", "generation": 0, "seen": time.monotonic()}
        return {
            m: {
                "desired": DesiredState(),
                "replicas": {
                    "r": {**report, "capabilities": self.adapters[m].capabilities.as_dict()}
                },
            }
            for m in models
        }


class Handle:
    """A model deployment's handle: ``forecast.remote(tasks)`` on an in-process adapter, taking
    the block of arrays the ingress sends (or a list, for tasks with covariates)."""

    def __init__(self, adapter: ModelAdapter) -> None:
        self.adapter = adapter
        self.forecast = self

    def options(self, **_: Any) -> Handle:
        return self

    def remote(self, tasks: TaskBlock | list[ForecastTask]) -> Any:
        unpacked = tasks.tasks() if isinstance(tasks, TaskBlock) else tasks
        return asyncio.to_thread(self.adapter.forecast, unpacked)


@pytest.fixture
def ingress(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[httpx.Client, Board]]:
    import deployments.ingress
    import deployments.routes_v1
    from deployments.api import create_api

    configs = {m: c for m, c in load_model_configs(ROOT / "configs/models").items() if m in MODELS}
    adapters = {m: create_adapter(c) for m, c in configs.items()}
    for adapter in adapters.values():
        adapter.load()
    board = Board(adapters)
    monkeypatch.setattr(deployments.ingress.BoardClient, "of_this_replica", lambda state: board)
    # /initialization's settings may be a minute old here, so a slow machine cannot flake the count.
    monkeypatch.setattr(deployments.routes_v1, "SETTINGS_MAX_AGE_S", 60.0)
    options = IngressOptions(key_digests=[digest(API_KEY)], limits=DataLimits(data_dir=data_dir))
    handles = {m: Handle(a) for m, a in adapters.items()}
    gateway = deployments.ingress.Ingress(handles, configs, options)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(create_api(gateway), headers=headers) as client:
        yield client, board


@pytest.mark.parametrize("path", ["/health", "/models", "/api/v2/models"])
def test_model_listings_take_one_board_call_for_every_model(
    ingress: tuple[httpx.Client, Board], path: str
) -> None:
    client, board = ingress
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert board.calls == 1
    if path == "/api/v2/models":
        # Capabilities come with the replicas' reports: no call to any model deployment.
        listed = {m["id"]: m["capabilities"] for m in response.json()["models"]}
        assert set(listed) == set(MODELS) and all(listed.values())


def test_info_needs_no_board_call(ingress: tuple[httpx.Client, Board]) -> None:
    client, board = ingress
    assert client.get("/info").status_code == 200
    assert board.calls == 0


def test_v1_inference_reads_its_defaults_from_the_ingress_view(
    ingress: tuple[httpx.Client, Board],
) -> None:
    client, board = ingress
    for _ in range(3):
        response = client.post("/api/v1/auto-ets/inference", json=SEED_REQUEST)
        assert response.status_code == 200, response.text
    assert board.calls == 1  # the first look; the others reuse it
