"""A KubeRay ``RayService`` manifest generated from ``serve_config.yaml`` (``sapheneia kube-manifest``).

``serve_config.yaml`` stays the one file an operator edits: the manifest carries it, as a string,
in ``spec.serveConfigV2`` and adds the cluster around it (a head group, a CPU and a GPU worker group,
keys and the Ray token from Kubernetes Secrets, weights on a volume). The committed copy,
``deploy/kubernetes/rayservice.yaml``, is regenerated whenever ``serve_config.yaml`` changes; a test
fails when the two differ.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from sapheneia import __version__
from sapheneia.config import load_model_configs
from sapheneia.errors import SapheneiaError

API_APPLICATION_IMPORT = "deployments.builder:build_app"
IMAGE_GID = 1000  # the Dockerfile's user `sapheneia` (useradd's first id), for writable volumes
DASHBOARD_AGENT_PORT = 52365  # KubeRay's default --dashboard-agent-listen-port
# The worker readiness check KubeRay would run (raylet, then this node's Serve proxy), in Python:
# KubeRay's own uses wget, which the python:slim image lacks, so without this every worker would
# stay unready and an EveryNode proxy on it would never get traffic.
WORKER_READINESS = (
    "import sys, urllib.request as u; sys.exit(any(b'success' not in "
    "u.urlopen(url, timeout=2).read() for url in sys.argv[1:]))"
)


@dataclass(frozen=True)
class WorkerGroup:
    """One worker group: pod size, replica bounds for the autoscaler, GPUs per pod."""

    name: str
    cpu: str
    memory: str
    replicas: int
    min_replicas: int
    max_replicas: int
    gpus: int = 0


@dataclass(frozen=True)
class ClusterSpec:
    """What the manifest adds around ``serve_config.yaml``. Defaults match deploy/kubernetes/."""

    name: str = "sapheneia"
    # The image `docker build -t sapheneia .` makes, pushed where the cluster pulls from. A new tag
    # changes rayClusterConfig, so KubeRay rolls out a new cluster with it (README).
    image: str = f"sapheneia:{__version__}"
    # GPU pods need an image with a CUDA build of torch (the Dockerfile installs the CPU one).
    gpu_image: str | None = None
    api_keys_secret: str = "sapheneia-api-keys"
    ray_token_secret: str = "sapheneia-ray-token"
    models_claim: str = "sapheneia-models"
    models_mount: str = "/models"  # SAPHENEIA_MODEL_DIR, as in the Dockerfile
    head_cpu: str = "2"
    head_memory: str = "8Gi"
    cpu_workers: WorkerGroup = WorkerGroup("cpu-workers", "4", "16Gi", 1, 1, 4)
    gpu_workers: WorkerGroup = WorkerGroup("gpu-workers", "4", "24Gi", 0, 0, 2, gpus=1)
    # Models moved onto the GPU group in serveConfigV2, each asking this share of one GPU.
    gpu_models: tuple[str, ...] = field(default_factory=tuple)
    gpu_fraction: float = 0.25


def read_serve_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SapheneiaError(f"cannot read serve config '{path}': {error}") from error
    if not isinstance(config, dict) or not isinstance(config.get("applications"), list):
        raise SapheneiaError(f"'{path}' has no 'applications' list: is it a Serve config?")
    return config


def api_models(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The model entries of every API application in a parsed serve config."""
    return [
        entry
        for app in config["applications"]
        if app.get("import_path") == API_APPLICATION_IMPORT
        for entry in app.get("args", {}).get("models", [])
    ]


def serve_config_for_cluster(config: dict[str, Any], spec: ClusterSpec) -> dict[str, Any]:
    """``config`` as the cluster runs it: the proxy on every interface, GPU shares where asked."""
    cluster = copy.deepcopy(config)
    # KubeRay's Services reach the proxy on the pod's address, never its loopback.
    cluster.setdefault("http_options", {})["host"] = "0.0.0.0"
    if spec.gpu_models:
        if not 0 < spec.gpu_fraction <= spec.gpu_workers.gpus:
            raise SapheneiaError(
                f"--gpu-fraction {spec.gpu_fraction} must be above 0 and at most the "
                f"{spec.gpu_workers.gpus} GPU(s) of a GPU worker"
            )
        models = {entry.get("id"): entry for entry in api_models(cluster)}
        for model_id in spec.gpu_models:
            if model_id not in models:
                raise SapheneiaError(
                    f"--gpu-model '{model_id}' is not a model of serve_config.yaml; known: "
                    f"{', '.join(str(key) for key in models)}"
                )
            models[model_id].setdefault("ray_actor_options", {})["num_gpus"] = spec.gpu_fraction
    return cluster


def _env(spec: ClusterSpec, port: int) -> list[dict[str, Any]]:
    def secret(name: str, key: str, *, optional: bool = False) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": spec.api_keys_secret, "key": key}
        if optional:
            ref["optional"] = True
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}

    return [
        # Every pod: the ingress replicas that check keys may run on any node.
        secret("SAPHENEIA_API_KEYS", "api-keys"),
        secret("SAPHENEIA_ADMIN_KEYS", "admin-keys", optional=True),
        {"name": "SAPHENEIA_MODEL_DIR", "value": spec.models_mount},
        # Weights come from the volume only: a missing one is `unavailable` at once, with the fix.
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        # The UI replica calls the API through KubeRay's Serve Service, not its own loopback.
        {"name": "UI_API_BASE_URL", "value": f"http://{spec.name}-serve-svc:{port}"},
    ]


def _container(
    spec: ClusterSpec, name: str, image: str, resources: dict[str, str], port: int
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "env": _env(spec, port),
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": [{"name": "ray-logs", "mountPath": "/tmp/ray"}],
    }


def _worker(spec: ClusterSpec, group: WorkerGroup, image: str, port: int) -> dict[str, Any]:
    resources = {"cpu": group.cpu, "memory": group.memory}
    if group.gpus:
        resources["nvidia.com/gpu"] = str(group.gpus)
    container = _container(spec, "ray-worker", image, resources, port)
    container["ports"] = [{"name": "serve", "containerPort": port}]
    container["volumeMounts"].append(
        {"name": "models", "mountPath": spec.models_mount, "readOnly": True}
    )
    readiness = [
        f"http://localhost:{DASHBOARD_AGENT_PORT}/api/local_raylet_healthz",
        f"http://localhost:{port}/-/healthz",
    ]
    container["readinessProbe"] = {
        "exec": {"command": ["python", "-c", WORKER_READINESS, *readiness]},
        "initialDelaySeconds": 10,
        "periodSeconds": 5,
        "timeoutSeconds": 5,
        "failureThreshold": 1,  # KubeRay's for Serve workers: a node without a proxy leaves at once
    }
    pod: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {"name": "ray-logs", "emptyDir": {}},
            {"name": "models", "persistentVolumeClaim": {"claimName": spec.models_claim}},
        ],
    }
    if group.gpus:
        pod["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {
        "groupName": group.name,
        "replicas": group.replicas,
        "minReplicas": group.min_replicas,
        "maxReplicas": group.max_replicas,
        "rayStartParams": {},
        "template": {"spec": pod},
    }


def rayservice(config: dict[str, Any], spec: ClusterSpec) -> dict[str, Any]:
    """The RayService object (``apiVersion: ray.io/v1``) for ``config``, a parsed serve config."""
    cluster_config = serve_config_for_cluster(config, spec)
    port = int(cluster_config["http_options"].get("port", 8000))
    head = _container(
        spec, "ray-head", spec.image, {"cpu": spec.head_cpu, "memory": spec.head_memory}, port
    )
    head["ports"] = [
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265},
        {"name": "client", "containerPort": 10001},
        {"name": "serve", "containerPort": port},
    ]
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": spec.name, "labels": {"app.kubernetes.io/name": "sapheneia"}},
        "spec": {
            "upgradeStrategy": {"type": "NewCluster"},
            "serveConfigV2": _literal(
                "# Generated from serve_config.yaml by `sapheneia kube-manifest`; edit that file.\n"
                + yaml.safe_dump(cluster_config, sort_keys=False)
            ),
            "rayClusterConfig": {
                "rayVersion": metadata.version("ray"),
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"upscalingMode": "Default", "idleTimeoutSeconds": 60},
                "authOptions": {"mode": "token", "secretName": spec.ray_token_secret},
                "headGroupSpec": {
                    # num-cpus 0: no replica lands on the head; it runs the controller and proxy.
                    "rayStartParams": {"num-cpus": "0"},
                    "template": {
                        "spec": {
                            "containers": [head],
                            "volumes": [{"name": "ray-logs", "emptyDir": {}}],
                        }
                    },
                },
                "workerGroupSpecs": [
                    _worker(spec, spec.cpu_workers, spec.image, port),
                    _worker(spec, spec.gpu_workers, spec.gpu_image or spec.image, port),
                ],
            },
        },
    }


class _literal(str):
    """A multi-line string dumped as a YAML block (``|``), as KubeRay's samples write serveConfigV2."""


def _represent_literal(dumper: yaml.SafeDumper, value: _literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_literal, _represent_literal)

HEADER = """\
# Generated by `sapheneia kube-manifest` from serve_config.yaml: do not edit, regenerate
# (README, "Deploying on Kubernetes"). Needs the KubeRay operator (v1.5.1 or newer, for
# authOptions), the Secrets of secret.example.yaml and the weights volume of models.yaml.
"""

# Comments put above the first line equal to the key (stripped), at that line's indentation.
COMMENTS = {
    "serveConfigV2: |": (
        "serve_config.yaml, with http_options.host 0.0.0.0. A change here alone is applied to the\n"
        "running cluster in place."
    ),
    "authOptions:": (
        "Ray's token auth, as scripts/ray_head.sh sets it up: KubeRay gives every Ray container\n"
        "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from this Secret's `auth_token`, and uses it itself.\n"
        "The dashboard listens on the pod network (KubeRay's operator submits serveConfigV2 to it)\n"
        "and answers nothing without the token."
    ),
    "- groupName: gpu-workers": (
        "An example of fractional GPUs: one GPU per pod, and a model asking num_gpus 0.25 in its\n"
        "ray_actor_options (serve_config.yaml, or `--gpu-model ID`) takes a quarter of it, so four\n"
        "such replicas share one GPU. Zero pods until a replica asks for a GPU; the autoscaler then\n"
        "adds them. Size cpu/memory/GPUs to your nodes."
    ),
}


def render(config: dict[str, Any], spec: ClusterSpec) -> str:
    """The manifest's text: the RayService as YAML, with the header and the comments above."""
    text = yaml.dump(rayservice(config, spec), Dumper=_Dumper, sort_keys=False, width=100)
    lines = text.splitlines()
    for key, comment in COMMENTS.items():
        index = next((i for i, line in enumerate(lines) if line.strip() == key), None)
        if index is None:
            raise RuntimeError(f"no line '{key}' to comment in the manifest")
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        lines[index:index] = [f"{indent}# {part}" for part in comment.splitlines()]
    return HEADER + "\n".join(lines) + "\n"


def models_to_pull(config: dict[str, Any], models_dir: Path) -> list[str]:
    """Ids ``sapheneia pull`` fetches for ``config``: served models whose configs/models file names
    hub weights and whose serve_config entry does not point ``checkpoint`` elsewhere."""
    known = load_model_configs(models_dir) if models_dir.is_dir() else {}
    ids = []
    for entry in api_models(config):
        model = known.get(entry.get("id", ""))
        if model is not None and model.checkpoint and "checkpoint" not in entry:
            ids.append(model.id)
    return ids


def weights_objects(config: dict[str, Any], spec: ClusterSpec, models_dir: Path) -> list[dict]:
    """The claim every worker mounts at ``spec.models_mount``, and a Job that pulls into it."""
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": spec.models_claim},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "20Gi"}}},
    }
    pulls = " && ".join(
        f"sapheneia pull {model_id}" for model_id in models_to_pull(config, models_dir)
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{spec.name}-pull-weights"},
        "spec": {
            "backoffLimit": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"fsGroup": IMAGE_GID},
                    "containers": [
                        {
                            "name": "pull",
                            "image": spec.image,
                            "command": [
                                "sh",
                                "-c",
                                pulls or "echo no model of serve_config.yaml has weights",
                            ],
                            "env": [{"name": "SAPHENEIA_MODEL_DIR", "value": spec.models_mount}],
                            "volumeMounts": [{"name": "models", "mountPath": spec.models_mount}],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "models",
                            "persistentVolumeClaim": {"claimName": spec.models_claim},
                        }
                    ],
                }
            },
        },
    }
    return [claim, job]


WEIGHTS_HEADER = """\
# Generated by `sapheneia kube-manifest` with rayservice.yaml: the weights volume, and a Job that
# fills it with `sapheneia pull` for each model of serve_config.yaml that has hub weights (it needs
# access to huggingface.co). Every worker mounts the claim read-only at /models
# (SAPHENEIA_MODEL_DIR); pods on several nodes share it, so it needs a storage class offering
# ReadWriteMany (NFS, CephFS, EFS, Filestore, Azure Files): set spec.storageClassName if the
# default one does not. Apply it before the RayService and wait for the Job:
#   kubectl wait --for=condition=complete job/sapheneia-pull-weights --timeout=30m
"""


def render_weights(config: dict[str, Any], spec: ClusterSpec, models_dir: Path) -> str:
    objects = weights_objects(config, spec, models_dir)
    return WEIGHTS_HEADER + yaml.safe_dump_all(objects, sort_keys=False, width=100)


def write_manifests(
    serve_config: Path, out_dir: Path, spec: ClusterSpec, models_dir: Path
) -> dict[str, str]:
    """Reads ``serve_config``; writes ``rayservice.yaml`` and ``models.yaml`` into ``out_dir``.
    Returns each file's text by name."""
    config = read_serve_config(serve_config)
    texts = {
        "rayservice.yaml": render(config, spec),
        "models.yaml": render_weights(config, spec, models_dir),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out_dir / name).write_text(text)
    return texts
