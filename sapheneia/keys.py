"""API keys: from the environment, a key file, or generated once and stored owner-only.

Two scopes. Forecast keys (``SAPHENEIA_API_KEYS``, ``SAPHENEIA_API_KEY_FILE``) may forecast, backtest and read;
admin keys (``SAPHENEIA_ADMIN_KEYS``, the earlier product's ``API_SECRET_KEY``, and the key generated
into the state directory when none is set) may also change model lifecycle. Every check here runs at start, so a bad key stops the start with the
fix instead of refusing every call later.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from sapheneia.settings import Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "api_key"


class KeyConfigError(ValueError):
    """A key setting that would leave the server open or unusable; stops the start."""


@dataclass(frozen=True)
class KeySet:
    """The keys a server accepts. ``forecast`` includes every admin key (an admin may also forecast)."""

    forecast: list[str]
    admin: list[str]
    key_file: Path | None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def read_key_file(path: Path) -> list[str]:
    """One key per line; blank lines and ``#`` comments are skipped. Fixes a too-open mode."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Readable by others means every local user holds the key: take that away, don't stop.
        path.chmod(0o600)
        logger.warning("API key file %s had mode %o: set to 600 (owner-only)", path, mode)
    keys = [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not keys:
        raise KeyConfigError(
            f"API key file {path} holds no key: write one key per line, or delete the file to "
            "have one generated"
        )
    return keys


def check_lengths(keys: list[str], source: str, minimum: int) -> None:
    for number, key in enumerate(keys, start=1):
        if len(key) < minimum:
            # The key itself never goes into a message or a log: only where it came from.
            raise KeyConfigError(
                f"key {number} in {source} is {len(key)} characters; keys must be at least "
                f"{minimum}: generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )


def generate_key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = "sk-" + secrets.token_urlsafe(32)
    # O_EXCL + 0600: the file is never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    logger.warning("no API key configured: generated an admin key in %s (owner-only)", path)
    return key


def load_keys(settings: Settings) -> KeySet:
    """Every configured key with its scope, checked; a generated admin key when none is set."""
    minimum = settings.min_key_length
    forecast = split_keys(settings.api_keys)
    check_lengths(forecast, "SAPHENEIA_API_KEYS", minimum)
    admin = split_keys(settings.admin_keys)
    check_lengths(admin, "SAPHENEIA_ADMIN_KEYS", minimum)
    legacy = split_keys(settings.api_secret_key)
    check_lengths(legacy, "API_SECRET_KEY", minimum)
    admin += legacy

    key_file = settings.api_key_file
    if key_file is not None:
        if not key_file.exists():
            # Most likely a mount that did not happen: generating a key there would hide it.
            raise KeyConfigError(
                f"API key file {key_file} (SAPHENEIA_API_KEY_FILE) does not exist: create it with "
                "one key per line, or unset SAPHENEIA_API_KEY_FILE to have a key generated"
            )
        from_file = read_key_file(key_file)
        check_lengths(from_file, str(key_file), minimum)
        forecast += from_file
    if forecast or admin:
        return scoped(forecast, admin, key_file)

    # Nothing set anywhere: the key the server generated (now or at an earlier start). Whoever can
    # read it started the server, so it may do everything, /initialization and /shutdown included.
    path = settings.state_dir / KEY_FILE_NAME
    if path.exists():
        generated = read_key_file(path)
        check_lengths(generated, str(path), minimum)
    else:
        generated = [generate_key_file(path)]
    return scoped([], generated, path)


def scoped(forecast: list[str], admin: list[str], key_file: Path | None) -> KeySet:
    if any(not key.isprintable() for key in [*forecast, *admin]):
        # Also keeps every key apart from a JWT subject's identity, which starts with a NUL.
        raise KeyConfigError("an API key contains a control character: use printable text only")
    admin = list(dict.fromkeys(admin))
    return KeySet(list(dict.fromkeys([*forecast, *admin])), admin, key_file)


def scoped_keys(settings: Settings) -> tuple[list[str], list[str]]:
    """(forecast keys, admin keys); every admin key is also a forecast key."""
    keys = load_keys(settings)
    return keys.forecast, keys.admin


def ensure_keys(settings: Settings) -> tuple[list[str], Path | None]:
    """Every accepted key (both scopes), and the key file in use, to tell the operator where it is."""
    keys = load_keys(settings)
    return keys.forecast, keys.key_file
