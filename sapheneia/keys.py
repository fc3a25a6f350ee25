"""API keys: from the environment, a key file, or generated once and stored owner-only."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

from sapheneia.settings import Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "api_key"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_key_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def ensure_keys(settings: Settings) -> tuple[list[str], Path | None]:
    """The configured keys, or a generated one stored owner-only.

    Returns the keys and, when a key file is in use, its path (to tell the operator where it is).
    """
    keys = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
    key_file = settings.api_key_file
    if key_file is not None and key_file.exists():
        keys += read_key_file(key_file)
    if keys:
        return keys, key_file
    path = key_file or settings.state_dir / KEY_FILE_NAME
    if path.exists():
        return read_key_file(path), path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = "sk-" + secrets.token_urlsafe(32)
    # O_EXCL + 0600: the file is never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    logger.warning("no API key configured: generated one in %s (owner-only)", path)
    return [key], path
