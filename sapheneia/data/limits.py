"""The limits the server puts on where data may come from and how much of it is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class DataLimits:
    """Where ``load_table`` may read from and how much.

    ``data_dir`` confines local paths; ``max_bytes`` caps uploads, files and downloads; URLs to
    private, loopback, link-local or reserved addresses are refused unless ``allow_private_urls``.
    Object-store URLs (``s3://``, ``gs://``) read with the server's own cloud credentials, so they
    are off unless ``allow_object_stores``.
    """

    data_dir: Path
    max_bytes: int = MAX_BYTES
    timeout_s: float = 10.0
    allow_private_urls: bool = False
    allow_object_stores: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
