"""The README's table of error codes is the code's: every code a caller can see, with its status,
is a class in ``sapheneia/errors.py`` (the HTTP framework's own answers included)."""

from __future__ import annotations

import re
from pathlib import Path

import sapheneia.errors as errors
from deployments.errors import HTTP_ERRORS

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> dict[str, int]:
    section = README.read_text().split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", section, flags=re.MULTILINE)
    return {code: int(status) for code, status in rows}


def code_table() -> dict[str, int]:
    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    declared = [errors.SapheneiaError, *subclasses(errors.SapheneiaError)]
    return {c.code: c.status for c in declared if c.__module__ == errors.__name__}


def test_every_error_code_is_in_the_readme_with_its_status() -> None:
    assert readme_table() == code_table()


def test_the_framework_answers_with_codes_of_sapheneia_errors() -> None:
    for status, cls in HTTP_ERRORS.items():
        assert getattr(errors, cls.__name__) is cls and cls.status == status
