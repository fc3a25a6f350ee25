"""The ui application's args: validated, with the API's address from args, env or default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from frontend.app import UIArgs, resolve_api_base_url


def test_address_from_args_then_environment_then_default() -> None:
    env = {"UI_API_BASE_URL": "http://api.internal:8000/"}
    assert (
        resolve_api_base_url(UIArgs(api_base_url="https://x.example/"), env) == "https://x.example"
    )
    assert resolve_api_base_url(UIArgs(), env) == "http://api.internal:8000"
    assert resolve_api_base_url(UIArgs(), {}) == "http://127.0.0.1:8000"


def test_unknown_args_are_refused() -> None:
    with pytest.raises(ValidationError, match="num_replicas"):
        UIArgs.model_validate({"num_replicas": 2})
