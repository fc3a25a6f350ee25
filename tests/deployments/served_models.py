"""Foundation models served in the session's test app, from random-weight checkpoints.

Each entry loads through the same adapter code a real checkpoint uses; only the weights differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_checkpoints(directory: Path) -> dict[str, Path]:
    """Model id -> checkpoint directory."""
    return {}


def model_entries(checkpoints: dict[str, Path]) -> list[dict[str, Any]]:
    """``serve_config.yaml``-style entries for the models above."""
    return []
