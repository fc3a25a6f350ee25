"""The data contract: load a table from anywhere the server allows, check it, and turn it into
one ``ForecastTask`` per series."""

from sapheneia.data.builder import build_tasks, checked_quantiles
from sapheneia.data.calendar import future_timestamps, infer_frequency, season_length
from sapheneia.data.describe import describe_table
from sapheneia.data.limits import DataLimits
from sapheneia.data.roles import ColumnRoles
from sapheneia.data.sources import load_table
from sapheneia.tasks import DECILES

__all__ = [
    "DECILES",
    "ColumnRoles",
    "DataLimits",
    "build_tasks",
    "checked_quantiles",
    "describe_table",
    "future_timestamps",
    "infer_frequency",
    "load_table",
    "season_length",
]
