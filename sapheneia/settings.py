"""Process settings, read from the environment (and ``.env``) when asked for, never on import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator sets through the environment. Names match the earlier product's where
    it had one (``API_SECRET_KEY``)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    api_keys: str = Field(
        default="",
        validation_alias=AliasChoices("SAPHENEIA_API_KEYS", "API_SECRET_KEY"),
        description="Comma-separated Bearer keys.",
        repr=False,
    )
    api_key_file: Path | None = Field(
        default=None,
        validation_alias="SAPHENEIA_API_KEY_FILE",
        description="File with one key per line; generated (mode 600) when no key is set anywhere.",
    )
    data_dir: Path = Field(default=Path("data"), validation_alias="SAPHENEIA_DATA_DIR")
    model_dir: Path | None = Field(default=None, validation_alias="SAPHENEIA_MODEL_DIR")
    state_dir: Path = Field(default=Path(".sapheneia"), validation_alias="SAPHENEIA_STATE_DIR")
    allow_private_urls: bool = Field(default=False, validation_alias="SAPHENEIA_ALLOW_PRIVATE_URLS")
    max_request_bytes: int = Field(
        default=20 * 1024 * 1024, validation_alias="SAPHENEIA_MAX_REQUEST_BYTES"
    )
    url_timeout_s: float = Field(default=10.0, validation_alias="SAPHENEIA_URL_TIMEOUT_S")
    cors_origins: str = Field(default="", validation_alias="SAPHENEIA_CORS_ORIGINS")
    rate_limit_per_minute: int = Field(default=600, validation_alias="SAPHENEIA_RATE_LIMIT")
    hub_offline: bool = Field(default=False, validation_alias="HF_HUB_OFFLINE")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
