"""The KubeRay manifests under deploy/kubernetes/: generated from serve_config.yaml, never drifting
from it, valid against KubeRay's own RayService CRD schema, and holding no secret. No Ray starts."""

from __future__ import annotations

import copy
import http.server
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sapheneia import cli
from sapheneia.keys import KeyConfigError, load_keys
from sapheneia.kuberay import WORKER_READINESS, ClusterSpec, rayservice, read_serve_config
from sapheneia.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
CRD = ROOT / "tests" / "fixtures" / "kuberay" / "ray.io_rayservices.yaml"
SECRET_NAMES = {
    "SAPHENEIA_API_KEYS",
    "SAPHENEIA_ADMIN_KEYS",
    "API_SECRET_KEY",
    "RAY_AUTH_TOKEN",
    "SAPHENEIA_JWT_HS256_SECRET",
}


def kube_manifest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sapheneia.cli", "kube-manifest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def committed() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())


def generated(tmp_path: Path, *args: str) -> dict[str, Any]:
    # In-process (the CLI's own main) for speed; the drift test runs the real command.
    assert cli.main(["kube-manifest", "--out-dir", str(tmp_path), *args]) == 0
    return yaml.safe_load((tmp_path / "rayservice.yaml").read_text())


def strict(schema: Any) -> Any:
    """The schema as the API server applies it with kubectl's default strict field validation:
    a field the schema does not name is an error (Kubernetes would drop it), not silently ignored."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def validator() -> jsonschema.Draft7Validator:
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["spec"]["names"]["kind"] == "RayService"
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    schema = strict(v1["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(manifest: dict[str, Any]) -> list[str]:
    """Each schema error as 'path: message', the path dotted from the object's root."""
    return sorted(
        ".".join(str(part) for part in error.absolute_path) + ": " + error.message
        for error in validator().iter_errors(manifest)
    )


def containers(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    cluster = manifest["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        yield from group["template"]["spec"]["containers"]


def test_committed_manifests_equal_a_fresh_generation(tmp_path: Path) -> None:
    result = kube_manifest("--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("rayservice.yaml", "models.yaml"):
        fresh, kept = (tmp_path / name).read_text(), (DEPLOY / name).read_text()
        assert fresh == kept, f"deploy/kubernetes/{name} is stale: run `sapheneia kube-manifest`"


def test_the_manifest_validates_against_the_rayservice_crd(tmp_path: Path) -> None:
    assert errors(committed()) == []
    on_gpus = generated(tmp_path, "--gpu-model", "timesfm-2.5", "--gpu-model", "timesfm-2.0")
    assert errors(on_gpus) == []
    assert committed()["apiVersion"] == "ray.io/v1" and committed()["kind"] == "RayService"


def workers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]


def replicas_as_text(m: dict[str, Any]) -> None:
    workers(m)[0]["replicas"] = "two"


def misspelt_field(m: dict[str, Any]) -> None:
    workers(m)[0]["rayStartParam"] = workers(m)[0].pop("rayStartParams")


def no_head(m: dict[str, Any]) -> None:
    del m["spec"]["rayClusterConfig"]["headGroupSpec"]


def unknown_auth_mode(m: dict[str, Any]) -> None:
    m["spec"]["rayClusterConfig"]["authOptions"]["mode"] = "tokens"


def serve_config_as_mapping(m: dict[str, Any]) -> None:
    m["spec"]["serveConfigV2"] = yaml.safe_load(m["spec"]["serveConfigV2"])


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            replicas_as_text,
            "spec.rayClusterConfig.workerGroupSpecs.0.replicas: 'two' is not of type 'integer'",
        ),
        (
            misspelt_field,
            "spec.rayClusterConfig.workerGroupSpecs.0: Additional properties are not allowed "
            "('rayStartParam' was unexpected)",
        ),
        (no_head, "spec.rayClusterConfig: 'headGroupSpec' is a required property"),
        (
            unknown_auth_mode,
            "spec.rayClusterConfig.authOptions.mode: 'tokens' is not one of ['disabled', 'token']",
        ),
        (serve_config_as_mapping, "spec.serveConfigV2: "),
    ],
)
def test_a_broken_manifest_fails_validation(breakage, expected: str) -> None:
    manifest = copy.deepcopy(committed())
    breakage(manifest)
    found = errors(manifest)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_serve_config_v2_is_serve_config_with_the_proxy_on_the_pod_network() -> None:
    source = read_serve_config(ROOT / "serve_config.yaml")
    carried = yaml.safe_load(committed()["spec"]["serveConfigV2"])
    assert isinstance(committed()["spec"]["serveConfigV2"], str)  # KubeRay takes a string
    assert carried["applications"] == source["applications"]
    assert carried["proxy_location"] == source["proxy_location"]
    assert carried["http_options"] == {**source["http_options"], "host": "0.0.0.0"}
    assert set(carried) == set(source)
    # What KubeRay submits to Serve's REST API, which checks it with this schema.
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(carried)


def test_gpu_models_take_a_share_of_the_gpu_group(tmp_path: Path) -> None:
    manifest = generated(tmp_path, "--gpu-model", "timesfm-2.5", "--gpu-fraction", "0.25")
    source = read_serve_config(ROOT / "serve_config.yaml")
    carried = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    (api,) = [app for app in carried["applications"] if app["name"] == "api"]
    (api_source,) = [app for app in source["applications"] if app["name"] == "api"]
    for entry, original in zip(api["args"]["models"], api_source["args"]["models"], strict=True):
        expected = copy.deepcopy(original)
        if original["id"] == "timesfm-2.5":
            expected["ray_actor_options"]["num_gpus"] = 0.25
        assert entry == expected
    gpu = [group for group in workers(manifest) if group["groupName"] == "gpu-workers"]
    (container,) = gpu[0]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "# An example of fractional GPUs" in (DEPLOY / "rayservice.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--gpu-model", "timesfm-9"],
            "error: --gpu-model 'timesfm-9' is not a model of serve_config.yaml; known: "
            "seasonal-naive, auto-ets, auto-arima, auto-theta, timesfm-2.5, timesfm-2.0",
        ),
        (
            ["--gpu-model", "timesfm-2.5", "--gpu-fraction", "1.5"],
            "error: --gpu-fraction 1.5 must be above 0 and at most the 1 GPU(s) of a GPU worker",
        ),
    ],
)
def test_a_bad_gpu_option_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main(["kube-manifest", "--out-dir", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "rayservice.yaml").exists()


def test_no_key_or_token_is_in_the_manifests(tmp_path: Path) -> None:
    planted = {name: "planted-" + secrets.token_hex(16) for name in SECRET_NAMES}
    (tmp_path / "out").mkdir()
    # Keys in the environment and in a .env of the working directory, where the service reads them.
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in planted.items()))
    env = {**os.environ, **planted, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sapheneia.cli",
            "--models-dir",
            str(ROOT / "configs" / "models"),
            "kube-manifest",
            "--serve-config",
            str(ROOT / "serve_config.yaml"),
            "--out-dir",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    texts = [(tmp_path / "out" / name).read_text() for name in ("rayservice.yaml", "models.yaml")]
    for text in [*texts, (DEPLOY / "rayservice.yaml").read_text()]:
        assert not [value for value in planted.values() if value in text]
        assert "planted-" not in text
    # Every secret the pods get comes by reference from a Secret of secret.example.yaml.
    example = {
        doc["metadata"]["name"]: set(doc["stringData"])
        for doc in yaml.safe_load_all((DEPLOY / "secret.example.yaml").read_text())
    }
    manifest = committed()
    referenced = set()
    for container in containers(manifest):
        for variable in container["env"]:
            if variable["name"] in SECRET_NAMES:
                assert "value" not in variable, variable
                ref = variable["valueFrom"]["secretKeyRef"]
                assert ref["key"] in example[ref["name"]]
                referenced.add(variable["name"])
    assert referenced == {"SAPHENEIA_API_KEYS", "SAPHENEIA_ADMIN_KEYS"}
    auth = manifest["spec"]["rayClusterConfig"]["authOptions"]
    assert auth["mode"] == "token"
    assert "auth_token" in example[auth["secretName"]]  # the key KubeRay reads


def test_the_example_secret_cannot_be_served_unchanged(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "secret.example.yaml").read_text()))
    keys = next(
        doc["stringData"] for doc in docs if doc["metadata"]["name"] == "sapheneia-api-keys"
    )
    settings = Settings(api_keys=keys["api-keys"], state_dir=tmp_path)
    with pytest.raises(KeyConfigError, match=r"key 1 in SAPHENEIA_API_KEYS is 9 characters"):
        load_keys(settings)
    settings = Settings(api_keys="k" * 32, admin_keys=keys["admin-keys"], state_dir=tmp_path)
    with pytest.raises(KeyConfigError, match=r"SAPHENEIA_ADMIN_KEYS"):
        load_keys(settings)


def test_pods_agree_with_the_image_and_the_serve_config() -> None:
    manifest = committed()
    port = read_serve_config(ROOT / "serve_config.yaml")["http_options"]["port"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    model_dir = re.search(r"SAPHENEIA_MODEL_DIR=(\S+)", dockerfile)
    assert model_dir is not None
    import ray

    assert manifest["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
    for container in containers(manifest):
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["SAPHENEIA_MODEL_DIR"] == model_dir.group(1)
        assert env["UI_API_BASE_URL"] == f"http://sapheneia-serve-svc:{port}"  # KubeRay's name
        assert {"name": "serve", "containerPort": port} in container["ports"]
    for group in workers(manifest):
        (container,) = group["template"]["spec"]["containers"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts[model_dir.group(1)]["readOnly"] is True
        volumes = {v["name"]: v for v in group["template"]["spec"]["volumes"]}
        claim = volumes[mounts[model_dir.group(1)]["name"]]["persistentVolumeClaim"]
        assert claim["claimName"] == "sapheneia-models"


def test_the_weights_job_pulls_every_served_model_with_hub_weights() -> None:
    claim, job = yaml.safe_load_all((DEPLOY / "models.yaml").read_text())
    assert (
        claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == "sapheneia-models"
    )
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == ClusterSpec().image
    served = [
        entry["id"]
        for app in read_serve_config(ROOT / "serve_config.yaml")["applications"]
        for entry in app.get("args", {}).get("models", [])
    ]
    with_weights = [
        model_id
        for model_id in served
        if yaml.safe_load((ROOT / "configs" / "models" / f"{model_id}.yaml").read_text()).get(
            "checkpoint"
        )
    ]
    assert with_weights == ["timesfm-2.5", "timesfm-2.0"]
    assert container["command"][-1] == " && ".join(f"sapheneia pull {m}" for m in with_weights)


def unused_url() -> str:
    """A loopback URL nothing listens on (the port is bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"success" if self.path == "/ok" else b"draining"
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_worker_readiness_check_needs_every_endpoint_to_answer_success() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:

        def check(*urls: str) -> int:
            return subprocess.run(
                [sys.executable, "-c", WORKER_READINESS, *urls], capture_output=True, timeout=30
            ).returncode

        assert check(f"{base}/ok", f"{base}/ok") == 0
        assert check(f"{base}/ok", f"{base}/proxy") == 1  # a node without a Serve proxy
        assert check(f"{base}/ok", unused_url()) == 1  # nothing listening
    finally:
        server.shutdown()
    (probe,) = {
        tuple(group["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"])
        for group in workers(committed())
    }
    assert probe[:3] == ("python", "-c", WORKER_READINESS)
    assert probe[3:] == (
        "http://localhost:52365/api/local_raylet_healthz",
        "http://localhost:8000/-/healthz",
    )


def test_rayservice_is_built_without_files() -> None:
    config = {"applications": [{"name": "a", "import_path": "x:y"}]}
    manifest = rayservice(config, ClusterSpec(name="other", image="registry/sapheneia:1"))
    assert errors(manifest) == []
    assert yaml.safe_load(manifest["spec"]["serveConfigV2"])["http_options"] == {"host": "0.0.0.0"}
    assert {c["image"] for c in containers(manifest)} == {"registry/sapheneia:1"}
