"""One real Ray Serve instance on loopback for the whole session, serving a small model set."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# Keep Ray on loopback: without this, connecting to 127.0.0.1 swaps in the machine's network address.
# Ray reads it once, when first imported, so it is set before any test module imports ray.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
# Serve's controller gives a new HTTP proxy 5 s to come up before it kills it and starts another;
# on a loaded two-core CI machine the first one can take longer, and serve.start then fails.
os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")

API_KEY = "test-key-0123456789"
OTHER_KEY = "second-key-abcdefgh"
ADMIN_KEY = "admin-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_samples(data_dir: Path) -> None:
    """Sample files in the data directory: the seed's layout (a 'date' column) and long format."""
    import numpy as np
    import pandas as pd
    from statsforecast.utils import AirPassengersDF

    uploads = data_dir / "uploads"
    uploads.mkdir(parents=True)
    air = AirPassengersDF.copy()
    seed = pd.DataFrame(
        {
            # Month starts, like the earlier product's sample data.
            "date": air["ds"].dt.to_period("M").dt.to_timestamp().dt.strftime("%Y-%m-%d"),
            "passengers": air["y"],
            "volume": np.linspace(1.0, 2.0, len(air)),
        }
    )
    seed.to_csv(uploads / "sample_data.csv", index=False)
    long = pd.concat([air.assign(unique_id="air"), air.assign(unique_id="air_x2", y=air["y"] * 2)])
    long.to_csv(data_dir / "two_series.csv", index=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Named 'data' like the default, so the earlier product's 'data/uploads/...' paths resolve.
    path = tmp_path_factory.mktemp("root") / "data"
    write_samples(path)
    return path


STATISTICAL_APP_ARGS = {
    "models_dir": "configs/models",
    "ingress": {"ray_actor_options": {"num_cpus": 0.1}, "lifecycle_timeout_s": 60},
    "models": [
        {
            "id": "seasonal-naive",
            "ray_actor_options": {"num_cpus": 0.1},
            "user_config": {"max_batch_size": 64, "batch_wait_timeout_s": 0.2},
        },
        {
            "id": "auto-ets",
            "ray_actor_options": {"num_cpus": 0.1},
            "user_config": {"max_batch_size": 32, "batch_wait_timeout_s": 0.2},
        },
        {"id": "auto-theta", "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.1}},
        {
            "id": "timesfm-2.5",
            "checkpoint": "/nonexistent/timesfm-2.5",
            "ray_actor_options": {"num_cpus": 0.1},
        },
    ],
}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight checkpoints written through each library's save_pretrained."""
    from tests.deployments.served_models import write_checkpoints

    return write_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def app_args(checkpoints: dict[str, Path]) -> dict:
    from tests.deployments.served_models import model_entries

    args = dict(STATISTICAL_APP_ARGS)
    args["models"] = [*STATISTICAL_APP_ARGS["models"], *model_entries(checkpoints)]
    args["traffic"] = [TRAFFIC_ROUTE]
    return args


# A traffic split of the session's app (tests/deployments/test_traffic.py): 3 : 1 over two models,
# every request copied to a third.
TRAFFIC_ROUTE = {
    "name": "statistical",
    "split": {"auto-ets": 3, "seasonal-naive": 1},
    "shadow": "auto-theta",
}


# Two Ray nodes on loopback, each with its own raylet, object store and resources, so placement,
# cross-node calls and the loss of a node are real. Four CPUs each: eight in all, as one node had.
NODE_CPUS = 4
OBJECT_STORE_BYTES = 256 * 1024 * 1024
# A custom resource only the worker has (and one only the head has), so that a test can place a
# replica on a node deliberately: ray_actor_options: {resources: {"worker_node": 0.01}}.
HEAD_RESOURCE, WORKER_RESOURCE = "head_node", "worker_node"


def worker_node_args() -> dict:
    """A worker node's arguments; the fault tests add a fresh one after killing the first."""
    return {
        "node_ip_address": "127.0.0.1",
        "num_cpus": NODE_CPUS,
        "resources": {WORKER_RESOURCE: 10},
        "object_store_memory": OBJECT_STORE_BYTES,
        "metrics_export_port": free_port(),
    }


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """The session's Ray cluster: a head node and one worker node, both on 127.0.0.1.

    A test that kills the worker (``kill_node``) adds a new one (``add_worker``) before it ends.
    ``cluster.metrics_ports`` maps each live node to its Prometheus port.
    """
    from ray.cluster_utils import Cluster

    os.environ["HF_HUB_OFFLINE"] = "1"  # inherited by the raylets and the Ray workers they start
    head_metrics_port = free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "node_ip_address": "127.0.0.1",
            "num_cpus": NODE_CPUS,
            "resources": {HEAD_RESOURCE: 10},
            "object_store_memory": OBJECT_STORE_BYTES,
            "include_dashboard": False,
            "metrics_export_port": head_metrics_port,
        },
    )
    cluster.metrics_ports = {cluster.head_node: head_metrics_port}
    add_worker(cluster)
    yield cluster
    import ray

    ray.shutdown()  # the driver first: a cluster with a driver connected refuses to stop its head
    cluster.shutdown()


def add_worker(cluster: Any) -> Any:
    """A new worker node in ``cluster``, waited for; its metrics port is published with the rest."""
    args = worker_node_args()
    node = cluster.add_node(**args)
    cluster.wait_for_nodes()
    cluster.metrics_ports[node] = args["metrics_export_port"]
    publish_metrics_ports(cluster)
    return node


def kill_node(cluster: Any, node: Any) -> None:
    """Every process of a worker node killed at once (SIGKILL), as when its machine fails."""
    cluster.remove_node(node, allow_graceful=False)
    cluster.metrics_ports.pop(node, None)
    publish_metrics_ports(cluster)


def publish_metrics_ports(cluster: Any) -> None:
    # Each node exports the metrics of the processes on it; a scraper reads every node.
    ports = cluster.metrics_ports.values()
    os.environ["SAPHENEIA_TEST_METRICS_PORTS"] = ",".join(map(str, ports))


def undeploy(name: str, state_dir: Path | None = None) -> None:
    """Delete application ``name`` and the detached actors it started: its lifecycle board and,
    given its state directory, the state actor of that directory's file. A test application must
    not leave processes behind for the rest of the session's tests.
    """
    import ray
    from ray import serve

    from deployments.lifecycle import BOARD_NAME, BOARD_NAMESPACE
    from deployments.state_store import actor_name
    from sapheneia.state import STATE_FILE_NAME

    serve.delete(name)
    doomed = [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == BOARD_NAMESPACE
        and actor["name"].startswith(f"{BOARD_NAME}-{name}-")
    ]
    if state_dir is not None:
        doomed.append(actor_name(str((state_dir / STATE_FILE_NAME).resolve())))
    for actor in doomed:
        with contextlib.suppress(ValueError):  # never created: no request reached the store
            ray.kill(ray.get_actor(actor, namespace=BOARD_NAMESPACE))


@pytest.fixture(scope="session")
def serve_url(
    cluster: Any,
    data_dir: Path,
    checkpoints: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    import ray
    from ray import serve

    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings

    port = free_port()
    ray.init(
        address=cluster.address,
        configure_logging=False,
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}},
    )
    # One HTTP proxy, on the head: both nodes share 127.0.0.1, so a second would find the port
    # taken. Replicas still run on both nodes; the proxy and the ingress reach them across nodes.
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    settings = Settings(
        api_keys=f"{API_KEY},{OTHER_KEY}",
        admin_keys=ADMIN_KEY,
        data_dir=data_dir,
        state_dir=tmp_path_factory.mktemp("state"),
        max_request_bytes=2 * 1024 * 1024,
        rate_limit_per_minute=100_000,
    )
    args = app_args(checkpoints)
    app = build_app_with_settings(args, settings)
    serve.run(app, name="api", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    wait_until_reported(url, {m["id"] for m in args["models"]})
    yield url
    serve.shutdown()
    ray.shutdown()


def wait_until_reported(url: str, models: set[str], timeout_s: float = 180) -> None:
    """Until every model has left 'initializing' (ready or unavailable)."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{url}/health", timeout=5).json()
            statuses = {m: s["status"] for m, s in last["models"].items()}  # type: ignore[index]
            if set(statuses) == models and "initializing" not in statuses.values():
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"service not ready: {last}")


@pytest.fixture(scope="session")
def client(serve_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=serve_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120
    ) as c:
        yield c


@pytest.fixture(scope="session")
def admin(serve_url: str) -> Iterator[httpx.Client]:
    """A client with an admin key: may also call /initialization and /shutdown."""
    with httpx.Client(
        base_url=serve_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120
    ) as c:
        yield c


@pytest.fixture(scope="session")
def anonymous(serve_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_url, timeout=60) as c:
        yield c


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The one error shape, with the expected status (and code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "request_id"}, body
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text and "/tmp/" not in response.text
    return body["error"]


LOCAL_MODELS = ["seasonal-naive", "auto-ets"]


@pytest.fixture(scope="session")
def local_gateway(data_dir: Path) -> object:
    """The routes over real in-process adapters, no Ray: for validation and error shapes."""
    from deployments.options import IngressOptions
    from sapheneia.data import DataLimits
    from sapheneia.keys import digest
    from tests.deployments.local_gateway import LocalGateway

    options = IngressOptions(
        key_digests=[digest(API_KEY), digest(OTHER_KEY)],
        admin_key_digests=[digest(ADMIN_KEY)],
        limits=DataLimits(data_dir=data_dir, max_bytes=2 * 1024 * 1024),
        rate_limit_per_minute=100_000,
    )
    return LocalGateway(LOCAL_MODELS, options)


@pytest.fixture(scope="session")
def local(local_gateway: object) -> Iterator[httpx.Client]:
    """An HTTP client of the in-process app, authenticated with a forecast key."""
    from fastapi.testclient import TestClient

    from deployments.api import create_api

    app = create_api(local_gateway)  # type: ignore[arg-type]
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


@pytest.fixture(scope="session")
def local_anonymous(local: httpx.Client) -> Iterator[httpx.Client]:
    from fastapi.testclient import TestClient

    with TestClient(local.app) as c:  # type: ignore[attr-defined]
        yield c
