"""Where a model's weights come from: a local directory, the weights store (``Settings.model_dir``,
where ``sapheneia pull`` writes), the hub cache, or the hub.

Without network a hub download hangs for half a minute before failing; we look locally first and
probe the hub with a short socket timeout so an offline start reports ``unavailable`` in seconds.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sapheneia.errors import ModelUnavailable

HUB_HOST = "huggingface.co"


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """True when the hub answers a TCP connect quickly and offline mode is not forced."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def store_path(model_dir: Path, checkpoint: str, revision: str | None = None) -> Path:
    """Folder in the weights store for a hub id: ``google/timesfm-2.5`` -> ``google--timesfm-2.5``,
    and ``google--timesfm-2.5@<revision>`` for a pinned revision (so two revisions never mix)."""
    name = checkpoint.replace("/", "--")
    return model_dir / (f"{name}@{revision.replace('/', '--')}" if revision else name)


def resolve_checkpoint(
    model_id: str, checkpoint: str, model_dir: Path | None = None, revision: str | None = None
) -> Path:
    """A local directory holding the weights for ``checkpoint`` (a hub id or a path) at
    ``revision`` (a commit or tag; the latest when ``None``).

    Raises ``ModelUnavailable`` whose message says how to make the weights available.
    """
    fix = (
        f"run `sapheneia pull {model_id}` on a machine with network access (it stores the weights "
        "in the weights store, SAPHENEIA_MODEL_DIR, default ./models, which the server reads), or "
        f"set `checkpoint:` of '{model_id}' to a local directory"
    )
    local = Path(checkpoint).expanduser()
    if local.is_dir():
        return local
    if checkpoint.startswith(("/", ".", "~")):
        raise ModelUnavailable(f"weights directory for '{model_id}' does not exist; {fix}")
    if model_dir is not None and store_path(model_dir, checkpoint, revision).is_dir():
        return store_path(model_dir, checkpoint, revision)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(checkpoint, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if not hub_reachable():
        raise ModelUnavailable(
            f"weights for '{model_id}' ({checkpoint}) are not on this machine and the Hugging Face "
            f"hub cannot be reached; {fix}"
        )
    try:
        return Path(snapshot_download(checkpoint, revision=revision))
    except Exception as error:  # the hub's many error types all mean the same thing to the caller
        raise ModelUnavailable(
            f"weights for '{model_id}' ({checkpoint}) could not be downloaded "
            f"({type(error).__name__}); {fix}"
        ) from error


def pull(checkpoint: str, destination: Path, revision: str | None = None) -> Path:
    """Download ``checkpoint`` at ``revision`` from the hub into ``destination`` for later
    offline use.

    Raises ``ModelUnavailable`` (with what to do) when the hub cannot be reached or refuses.
    """
    from huggingface_hub import snapshot_download

    if not hub_reachable():
        raise ModelUnavailable(
            f"cannot reach the Hugging Face hub to download {checkpoint}: run this on a machine "
            "with network access (HF_HUB_OFFLINE must be unset), then copy the folder here"
        )
    destination.mkdir(parents=True, exist_ok=True)
    try:
        return Path(snapshot_download(checkpoint, revision=revision, local_dir=destination))
    except Exception as error:  # the hub's many error types all mean the same to the caller
        raise ModelUnavailable(
            f"downloading {checkpoint} failed ({type(error).__name__}: {error}); check the "
            "repository id and your network, or log in with `hf auth login` for gated models"
        ) from error
