"""Key loading, generation and checking, without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.auth import KeyChecker
from sapheneia.errors import RateLimited, Unauthorized
from sapheneia.keys import digest, ensure_keys
from sapheneia.settings import Settings


def test_environment_keys_win_and_no_file_is_written(tmp_path: Path) -> None:
    keys, path = ensure_keys(Settings(api_keys=" a , b ", state_dir=tmp_path))
    assert keys == ["a", "b"] and path is None
    assert not any(tmp_path.iterdir())


def test_earlier_product_variable_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_SECRET_KEY", "legacy-key")
    monkeypatch.delenv("SAPHENEIA_API_KEYS", raising=False)
    keys, _ = ensure_keys(Settings(state_dir=tmp_path))
    assert keys == ["legacy-key"]


def test_generated_key_is_owner_only_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_SECRET_KEY", raising=False)
    monkeypatch.delenv("SAPHENEIA_API_KEYS", raising=False)
    settings = Settings(state_dir=tmp_path / "state")
    keys, path = ensure_keys(settings)
    assert path == tmp_path / "state" / "api_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(keys) == 1 and len(keys[0]) > 30
    assert ensure_keys(settings)[0] == keys  # the second start reads the same key


def test_key_file_adds_keys(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("one\n\ntwo\n")
    keys, path = ensure_keys(Settings(api_keys="env", api_key_file=key_file, state_dir=tmp_path))
    assert keys == ["env", "one", "two"] and path == key_file


def test_checker_accepts_only_known_keys() -> None:
    checker = KeyChecker([digest("good")], rate_limit_per_minute=100)
    assert checker.check("Bearer good").key_digest == digest("good")
    assert checker.check("bearer good").key_digest == digest("good")
    for header in (None, "", "Bearer", "Bearer bad", "Token good", "good"):
        with pytest.raises(Unauthorized):
            checker.check(header)


def test_rate_limit_per_key() -> None:
    checker = KeyChecker([digest("a"), digest("b")], rate_limit_per_minute=3)
    for _ in range(3):
        checker.check("Bearer a")
    with pytest.raises(RateLimited, match="3 requests per minute"):
        checker.check("Bearer a")
    checker.check("Bearer b")  # another key has its own budget
