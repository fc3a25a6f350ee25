"""Desired model state shared by every replica, so lifecycle calls act on all of them.

The earlier product's ``/initialization`` and ``/shutdown`` changed one in-process model. With several
replicas a request reaches only one of them, so instead the ingress writes the *desired* state of a
model to one named actor (``ModelStateBoard``), and every ``ModelServer`` replica polls it, converges
(loads or unloads its weights) and reports back what it actually is. ``/status`` reads those reports,
and lifecycle calls wait until every live replica has reached the new generation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import ray

BOARD_NAME = "sapheneia-model-state"
BOARD_NAMESPACE = "sapheneia"
# A replica that has not reported for this long is treated as gone (scaled down or dead).
STALE_AFTER_S = 5.0


@dataclass
class DesiredState:
    """What the operator asked for: ``ready`` (weights loaded) or ``shutdown``."""

    state: str = "ready"
    generation: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


@ray.remote(num_cpus=0)
class ModelStateBoard:
    """One per cluster: desired state per model, and each replica's last report."""

    def __init__(self) -> None:
        self.desired: dict[str, DesiredState] = {}
        self.reports: dict[str, dict[str, dict[str, Any]]] = {}

    def set_desired(self, model: str, state: str, settings: dict[str, Any]) -> int:
        """A new generation for every replica to converge to; settings not sent are kept."""
        current = self.desired.get(model, DesiredState())
        merged = {**current.settings, **settings}
        self.desired[model] = DesiredState(state, current.generation + 1, merged)
        return current.generation + 1

    def update_settings(self, model: str, settings: dict[str, Any]) -> None:
        """New request defaults for a model whose weights stay as they are: no new generation, so
        no replica reloads and no request sees a 503."""
        current = self.desired.setdefault(model, DesiredState())
        current.settings = {**current.settings, **settings}

    def report(self, model: str, replica: str, status: dict[str, Any]) -> DesiredState:
        """A replica says what it is; the answer is what it should become."""
        self.reports.setdefault(model, {})[replica] = {**status, "seen": time.monotonic()}
        return self.desired.get(model, DesiredState())

    def views(self, models: list[str]) -> dict[str, dict[str, Any]]:
        """Desired state and live reports of each model, in one call for all of them."""
        now = time.monotonic()
        views = {}
        for model in models:
            live = {
                replica: report
                for replica, report in self.reports.get(model, {}).items()
                if now - report["seen"] < STALE_AFTER_S
            }
            views[model] = {"desired": self.desired.get(model, DesiredState()), "replicas": live}
        return views


def get_board(run_id: str) -> Any:
    """The board of one deployment run, created by whoever asks first.

    Detached so that it survives any one replica; named by the run id that ``build_app`` draws, so a
    fresh ``serve run`` starts with every model ``ready`` instead of inheriting an old shutdown.
    """
    return ModelStateBoard.options(  # type: ignore[attr-defined]
        name=f"{BOARD_NAME}-{run_id}",
        namespace=BOARD_NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
    ).remote()


@dataclass(frozen=True)
class ModelState:
    """What the routes know of one model, from one look at the board."""

    status: str
    reason: str | None
    replicas: int
    generation: int
    converged: bool
    settings: dict[str, Any]
    # From the replicas' own reports, so listing models needs no call to each deployment.
    capabilities: dict[str, Any]


def summarize(view: dict[str, Any]) -> ModelState:
    """One status for a model from its replicas' reports.

    ``ready`` only when every live replica is ready at the desired generation; ``initializing`` while
    any is still converging; ``unavailable``/``error`` when a replica cannot load (with its reason).
    """
    desired: DesiredState = view["desired"]
    replicas = view["replicas"]
    statuses = [r["status"] for r in replicas.values()]
    converged = all(r.get("generation", -1) >= desired.generation for r in replicas.values())
    if not replicas:
        status = "initializing"
    elif "unavailable" in statuses:
        status = "unavailable"
    elif "error" in statuses:
        status = "error"
    elif not converged or "initializing" in statuses:
        status = "initializing"
    elif all(s == "ready" for s in statuses):
        status = "ready"
    else:
        status = "uninitialized"
    reasons = sorted({r["reason"] for r in replicas.values() if r.get("reason")})
    capabilities: dict[str, Any] = next(
        (r["capabilities"] for r in replicas.values() if "capabilities" in r), {}
    )
    return ModelState(
        status=status,
        reason="; ".join(reasons) or None,
        replicas=len(replicas),
        generation=desired.generation,
        converged=converged,
        settings=dict(desired.settings),
        capabilities=capabilities,
    )
