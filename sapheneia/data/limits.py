"""The limits the server puts on where data may come from and how much of it is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sapheneia.errors import LimitExceeded

if TYPE_CHECKING:
    from sapheneia.settings import Settings

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 2_000_000
MAX_COLUMNS = 256
MAX_SERIES = 100_000
MAX_NAME_CHARS = 256
MAX_QUANTILES = 99
MAX_OUTPUT_CELLS = 50_000_000
MAX_ONE_STEP_POINTS = 2_000


@dataclass(frozen=True)
class DataLimits:
    """Where ``load_table`` may read from and how much.

    ``data_dir`` confines local paths; ``max_bytes`` caps uploads, files and downloads; URLs to
    private, loopback, link-local or reserved addresses are refused unless ``allow_private_urls``.
    Object-store URLs (``s3://``, ``gs://``) read with the server's own cloud credentials, so they
    are off unless ``allow_object_stores``. ``max_bytes`` also caps the decoded size of compressed
    downloads and files; ``max_rows``/``max_columns`` cap the table read. The rest cap what a
    request asks for: series, id and column-name length, quantile levels, and output cells
    (horizon × series × (levels + 1), the +1 being the mean). URLs may name only ``url_ports``
    (None: any port), so the fetcher cannot be pointed at a mail or database port.
    """

    data_dir: Path
    max_bytes: int = MAX_BYTES
    timeout_s: float = 10.0
    allow_private_urls: bool = False
    allow_object_stores: bool = False
    max_rows: int = MAX_ROWS
    max_columns: int = MAX_COLUMNS
    max_series: int = MAX_SERIES
    max_name_chars: int = MAX_NAME_CHARS
    max_quantiles: int = MAX_QUANTILES
    max_output_cells: int = MAX_OUTPUT_CELLS
    #: Points tested by rolling one-step forecasts (anomalies, ``history``): series × points.
    max_one_step_points: int = MAX_ONE_STEP_POINTS
    url_ports: tuple[int, ...] | None = (80, 443)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    @classmethod
    def from_settings(cls, settings: Settings) -> DataLimits:
        """The limits an operator set through the environment; the one place they are read."""
        return cls(
            data_dir=settings.data_dir.resolve(),
            max_bytes=settings.max_request_bytes,
            timeout_s=settings.url_timeout_s,
            allow_private_urls=settings.allow_private_urls,
            allow_object_stores=settings.allow_object_stores,
            max_rows=settings.max_rows,
            max_columns=settings.max_columns,
            max_series=settings.max_series,
            max_name_chars=settings.max_name_chars,
            max_quantiles=settings.max_quantiles,
            max_output_cells=settings.max_output_cells,
            max_one_step_points=settings.max_one_step_points,
            url_ports=ports(settings.url_ports),
        )


# Callers that read no files (the CLI after loading, backtests, benches) still get the default caps.
DEFAULT_CAPS = DataLimits(data_dir=Path("data"))


def ports(setting: str) -> tuple[int, ...] | None:
    """``"80,443"`` as ports; ``"*"`` as None (any). ValueError for anything else."""
    if setting.strip() == "*":
        return None
    parts = [part.strip() for part in setting.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and 0 < int(part) < 65536 for part in parts):
        raise ValueError(
            f"url ports must be '*' or a comma-separated list of ports, not {setting!r}"
        )
    return tuple(int(part) for part in parts)


def over_limit(found: str, limit: int, setting: str, fix: str) -> LimitExceeded:
    """``LimitExceeded`` naming what was sent, the cap, the setting behind it and the way under it."""
    return LimitExceeded(
        f"{found}, over the limit of {limit:,}; {fix}, or ask the operator to raise {setting}"
    )
