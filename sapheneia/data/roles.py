"""What the caller's columns mean: timestamp, series id, target and covariate roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sapheneia.errors import InvalidInput
from sapheneia.tasks import COVARIATE_ROLES


def _check_covariate_roles(covariates: Mapping[str, str]) -> None:
    for column, role in covariates.items():
        if role not in COVARIATE_ROLES:
            raise InvalidInput(
                f"column '{column}' has the unknown role '{role}'; "
                f"valid roles are target, {', '.join(COVARIATE_ROLES)}"
            )


@dataclass(frozen=True)
class ColumnRoles:
    """Which column is which in a long-format table.

    ``series_id=None`` means the whole table is one series (the earlier product's format).
    ``covariates`` maps a column name to one of ``COVARIATE_ROLES``.
    """

    timestamp: str = "ds"
    series_id: str | None = "unique_id"
    target: str = "y"
    covariates: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_covariate_roles(self.covariates)
        taken = {self.timestamp, self.target, self.series_id}
        for column in self.covariates:
            if column in taken:
                raise InvalidInput(
                    f"column '{column}' cannot be a covariate: it is already the timestamp, "
                    "target or series id column"
                )
        if self.timestamp == self.target or self.series_id in (self.timestamp, self.target):
            raise InvalidInput(
                "the timestamp, target and series id columns must be three different columns"
            )

    @classmethod
    def from_data_definition(
        cls, definition: Mapping[str, str], timestamp: str = "date"
    ) -> ColumnRoles:
        """Roles from the earlier product's ``data_definition`` ``{column: role}`` (one series)."""
        targets = [column for column, role in definition.items() if role == "target"]
        if len(targets) != 1:
            named = f" ({', '.join(repr(t) for t in targets)})" if targets else ""
            raise InvalidInput(
                f"data_definition must name exactly one 'target' column; it names {len(targets)}{named}"
            )
        covariates = {column: role for column, role in definition.items() if role != "target"}
        _check_covariate_roles(covariates)
        return cls(timestamp=timestamp, series_id=None, target=targets[0], covariates=covariates)

    def role_of(self, role: str) -> list[str]:
        """Covariate columns with the given role, in the caller's order."""
        return [column for column, r in self.covariates.items() if r == role]
