"""Gateway settings: read from the environment (and an optional ``.env``) in ONE place.

Environment variable names are prefix-free and match the field names exactly
(``CITY``, ``RASA_URL`` …). Everything else in ``bot`` gets its settings from
:func:`get_settings` or from the ``Settings`` object passed to ``create_app``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Repository root (the directory holding ``bot/``, ``procedures/``, ``domain.yml``).
DEFAULT_REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Gateway configuration.

    Fields (environment variable = field name):
        CITY: city profile id, selects ``procedures/cities/<CITY>/`` (default ``morioka``).
        RASA_URL: base URL of the rasa server (private, 127.0.0.1).
        ACTION_SERVER_URL: base URL of the rasa-sdk action server (private, 127.0.0.1).
        GATEWAY_HOST / GATEWAY_PORT: bind address of the gateway, the one public port.
        RASA_TIMEOUT_S: timeout in seconds for one rasa REST webhook call.
        MAX_TEXT_CHARS: maximum length of a citizen message (characters, after stripping).
        LOG_LEVEL: logging level name for the gateway (``INFO``, ``DEBUG`` …).
        REPO_ROOT: repository root; derived from this file's location.
        DOMAIN_FILE: rasa domain holding the ``utter_service_unavailable`` response;
            derived as ``REPO_ROOT/domain.yml`` when unset.

    Raises:
        pydantic.ValidationError: when a value has the wrong type (e.g. ``GATEWAY_PORT=abc``).
    """

    model_config = SettingsConfigDict(
        env_file=DEFAULT_REPO_ROOT / ".env",
        env_file_encoding="utf-8",
        case_sensitive=True,
        extra="ignore",
    )

    CITY: str = "morioka"
    RASA_URL: str = "http://127.0.0.1:5005"
    ACTION_SERVER_URL: str = "http://127.0.0.1:5055"
    GATEWAY_HOST: str = "0.0.0.0"
    GATEWAY_PORT: int = 8000
    RASA_TIMEOUT_S: float = 10.0
    MAX_TEXT_CHARS: int = 1000
    LOG_LEVEL: str = "INFO"
    REPO_ROOT: Path = DEFAULT_REPO_ROOT
    DOMAIN_FILE: Path | None = None

    @model_validator(mode="after")
    def _derive_paths(self) -> "Settings":
        """Fill ``DOMAIN_FILE`` from ``REPO_ROOT`` and strip trailing slashes from URLs."""
        if self.DOMAIN_FILE is None:
            self.DOMAIN_FILE = self.REPO_ROOT / "domain.yml"
        self.RASA_URL = self.RASA_URL.rstrip("/")
        self.ACTION_SERVER_URL = self.ACTION_SERVER_URL.rstrip("/")
        return self

    @property
    def city_file(self) -> Path:
        """Path of the city profile ``procedures/cities/<CITY>/city.yml``."""
        return self.REPO_ROOT / "procedures" / "cities" / self.CITY / "city.yml"


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide :class:`Settings` (read once, then cached)."""
    return Settings()
