"""Key loading, generation and checking, without a cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deployments.auth import KeyChecker
from deployments.rate_limits import KeyLimits, RateLimits
from sapheneia.errors import RateLimited, Unauthorized
from sapheneia.keys import KeyConfigError, digest, ensure_keys, scoped_keys
from sapheneia.settings import Settings
from sapheneia.state import LocalState

A = "a-forecast-key-0001"
B = "b-forecast-key-0002"
ADMIN = "an-admin-key-00003"
LEGACY = "the-earlier-secret-04"


@pytest.fixture(autouse=True)
def no_keys_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAPHENEIA_API_KEYS", "SAPHENEIA_ADMIN_KEYS", "API_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_environment_keys_win_and_no_file_is_written(tmp_path: Path) -> None:
    keys, path = ensure_keys(Settings(api_keys=f" {A} , {B} ", state_dir=tmp_path))
    assert keys == [A, B] and path is None
    assert not any(tmp_path.iterdir())


def test_earlier_product_variable_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_SECRET_KEY", LEGACY)
    keys, _ = ensure_keys(Settings(state_dir=tmp_path))
    assert keys == [LEGACY]
    # It could do everything in the earlier product: it stays an admin key.
    assert scoped_keys(Settings(state_dir=tmp_path)) == ([LEGACY], [LEGACY])


def test_generated_key_is_owner_only_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    keys, path = ensure_keys(settings)
    assert path == tmp_path / "state" / "api_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(keys) == 1 and len(keys[0]) > 30
    assert ensure_keys(settings)[0] == keys  # the second start reads the same key
    # Whoever started the server can also load and unload models with it (make run users).
    assert scoped_keys(settings) == (keys, keys)


def test_key_file_adds_keys(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"# the UI's key\n{A}\n\n{B}\n")
    key_file.chmod(0o600)
    settings = Settings(api_keys=LEGACY, api_key_file=key_file, state_dir=tmp_path)
    keys, path = ensure_keys(settings)
    assert keys == [LEGACY, A, B] and path == key_file
    assert scoped_keys(settings) == ([LEGACY, A, B], [])  # a key file holds forecast keys


def test_scopes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAPHENEIA_API_KEYS", f"{A},{B}")
    monkeypatch.setenv("SAPHENEIA_ADMIN_KEYS", ADMIN)
    monkeypatch.setenv("API_SECRET_KEY", LEGACY)
    forecast, admin = scoped_keys(Settings(state_dir=tmp_path))
    assert admin == [ADMIN, LEGACY]
    assert forecast == [A, B, ADMIN, LEGACY]  # an admin key may also forecast
    assert not any(tmp_path.iterdir())  # nothing generated when keys are set


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ("api_keys", "SAPHENEIA_API_KEYS"),
        ("admin_keys", "SAPHENEIA_ADMIN_KEYS"),
        ("api_secret_key", "API_SECRET_KEY"),
    ],
)
def test_a_short_key_stops_the_start_naming_the_minimum(
    tmp_path: Path, field: str, source: str
) -> None:
    short = "x" * 15
    with pytest.raises(KeyConfigError) as raised:
        ensure_keys(Settings(**{field: f"{A},{short}"}, state_dir=tmp_path))
    message = str(raised.value)
    assert f"key 2 in {source} is 15 characters" in message and "at least 16" in message
    assert short not in message  # the key is never echoed
    ensure_keys(Settings(**{field: "x" * 16}, state_dir=tmp_path))  # 16 is enough


def test_a_short_key_in_the_key_file_stops_the_start(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"{A}\nshort\n")
    with pytest.raises(KeyConfigError, match=f"key 2 in {key_file} is 5 characters"):
        ensure_keys(Settings(api_key_file=key_file, state_dir=tmp_path))


def test_the_minimum_can_be_raised_not_lowered(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="at least 24"):
        ensure_keys(Settings(api_keys=A, min_key_length=24, state_dir=tmp_path))
    with pytest.raises(ValueError, match="greater than or equal to 16"):
        Settings(min_key_length=8)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "# keys go here\n\n# one per line\n"])
def test_a_key_file_without_a_key_stops_the_start_naming_it(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(content)
    key_file.chmod(0o600)
    for settings in (
        Settings(api_key_file=key_file, state_dir=tmp_path),
        Settings(api_keys=A, api_key_file=key_file, state_dir=tmp_path),
    ):
        with pytest.raises(KeyConfigError, match=f"API key file {key_file} holds no key"):
            ensure_keys(settings)
    # The generated-key location is held to the same rule.
    (tmp_path / "api_key").write_text(content)
    with pytest.raises(KeyConfigError, match="holds no key"):
        ensure_keys(Settings(state_dir=tmp_path))


def test_a_key_file_readable_by_others_is_made_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(A + "\n")
    key_file.chmod(0o644)
    with caplog.at_level("WARNING", logger="sapheneia.keys"):
        keys, _ = ensure_keys(Settings(api_key_file=key_file, state_dir=tmp_path))
    assert keys == [A]
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert f"{key_file} had mode 644: set to 600" in caplog.text
    assert A not in caplog.text


def test_a_missing_key_file_stops_the_start_instead_of_generating_there(tmp_path: Path) -> None:
    key_file = tmp_path / "mount" / "keys"  # a volume that was not mounted, say
    for settings in (
        Settings(api_key_file=key_file, state_dir=tmp_path / "state"),
        Settings(api_keys=A, api_key_file=key_file, state_dir=tmp_path / "state"),
    ):
        with pytest.raises(KeyConfigError, match=f"API key file {key_file} .* does not exist"):
            ensure_keys(settings)
    assert not key_file.exists() and not (tmp_path / "state").exists()


def test_a_generated_key_is_admin_only_while_nothing_else_is_set(tmp_path: Path) -> None:
    forecast, admin = scoped_keys(Settings(state_dir=tmp_path))
    assert forecast == admin and len(admin) == 1
    # Once keys are configured, the generated file is no longer read at all.
    assert scoped_keys(Settings(api_keys=A, state_dir=tmp_path)) == ([A], [])


def test_checker_accepts_only_known_keys() -> None:
    checker = KeyChecker([digest("good")])
    assert checker.check("Bearer good").key_digest == digest("good")
    assert checker.check("bearer good").key_digest == digest("good")
    for header in (None, "", "Bearer", "Bearer bad", "Token good", "good"):
        with pytest.raises(Unauthorized):
            checker.check(header)


def test_rate_limit_per_key(tmp_path: Path) -> None:
    limits = RateLimits(LocalState(tmp_path / "state.sqlite3"), KeyLimits(requests_per_minute=3))

    async def run() -> None:
        for _ in range(3):
            await limits.admit_request(digest("a"))
        with pytest.raises(RateLimited, match="3 requests per minute"):
            await limits.admit_request(digest("a"))
        await limits.admit_request(digest("b"))  # another key has its own budget

    asyncio.run(run())
