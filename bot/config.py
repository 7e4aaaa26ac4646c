"""Gateway settings: read from the environment (and an optional ``.env``) in ONE place.

Environment variable names are prefix-free and match the field names exactly
(``CITY``, ``RASA_URL`` …). Everything else in ``bot`` gets its settings from
:func:`get_settings` or from the ``Settings`` object passed to ``create_app``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Repository root (the directory holding ``bot/``, ``procedures/``, ``domain.yml``).
DEFAULT_REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Gateway configuration.

    Fields (environment variable = field name):
        CITY: city profile id, selects ``procedures/cities/<CITY>/`` (default ``morioka``).
        RASA_URL: base URL of the rasa server (private, 127.0.0.1).
        RASA_URLS: comma-separated base URLs of several rasa replicas (scale-out, e.g.
            ``http://10.0.0.5:5005,http://10.0.0.6:5005``); each conversation is routed to one
            of them by its sender id (see :func:`bot.rasa_client.rank_replicas`). Empty (default):
            the single ``RASA_URL``. The replicas must share a tracker store and a lock store
            (``deploy/endpoints.postgres.yml``). Read through :attr:`rasa_replicas`.
        RASA_REPLICAS: how many rasa processes ``make run`` (``python -m bot stack``) starts on
            this machine, on consecutive ports from ``RASA_URL``'s (5005, 5006 …), sharing the
            SQLite tracker store of endpoints.yml; the gateway routes by sender id as with
            ``RASA_URLS``. One rasa process handles one message at a time on one core; on a
            machine with 2 cores, 4 replicas (with ``RASA_TF_THREADS=1``) measured best: conversations
            spread more evenly than over 2 (``make bench``, docs/operations.md). Each needs about
            2.2 GB of memory. Default 1.
        RASA_TF_THREADS: TensorFlow threads of each rasa process started by the stack (sets
            ``TF_INTRA_OP_PARALLELISM_THREADS`` and ``TF_INTER_OP_PARALLELISM_THREADS``, which rasa
            reads; Rasa docs "Tuning Your Model" → "Configuring TensorFlow"). Default 1: one
            message's model inference is too small to gain from more threads, and with several rasa
            processes TensorFlow's default (thread pools sized for the whole machine, in every
            process) puts more threads than cores on the CPU. Measured in one rasa process alone,
            alternating: 33.7 vs 35.0 ms CPU per message (1 vs default; within the noise,
            docs/operations.md). 0: TensorFlow's own default.
        ACTION_SERVER_URL: base URL of the rasa-sdk action server (private, 127.0.0.1).
        GATEWAY_HOST / GATEWAY_PORT: bind address of the gateway, the one public port.
        RASA_TIMEOUT_S: timeout in seconds for one rasa REST webhook call.
        MAX_TEXT_CHARS: maximum length of a citizen message (characters, after stripping).
        LOG_LEVEL: logging level name for the gateway (``INFO``, ``DEBUG`` …).
        FURIGANA_MAX_CHARS: maximum length of a text for ``POST /api/furigana`` (characters).
        WEB_FRAME_ANCESTORS: who may embed the chat page (the widget's iframe): CSP
            ``frame-ancestors`` sources separated by spaces, e.g. ``https://www.city.example.jp``.
            Empty (default): ``'self'`` and the origin of the city's ``website`` in city.yml.
        LINE_CHANNEL_SECRET: LINE Messaging API channel secret (チャネルシークレット); verifies
            ``X-Line-Signature``. Empty (default): ``/line/webhook`` answers 503 (LINE off).
        LINE_CHANNEL_ACCESS_TOKEN: LINE long-lived channel access token (チャネルアクセストークン).
        LINE_API_BASE_URL: LINE Messaging API base URL (default ``https://api.line.me``; tests
            point it at a local fake server).
        LINE_API_TIMEOUT_S: timeout of one LINE API call, seconds.
        LINE_RETRY_ATTEMPTS: attempts per LINE reply (1 = no retry) on HTTP 429/5xx and timeouts.
        LINE_RETRY_BACKOFF_S: first wait between attempts, seconds (doubles each time, at most 8 s;
            a reply token expires about a minute after the event).
        LINE_DEDUP_TTL_S: how long a ``webhookEventId`` is remembered to drop redelivered events, s.
        PSEUDONYM_KEY: secret HMAC key that turns LINE user ids into pseudonymous sender ids
            (:func:`bot.privacy.pseudonymize`); empty: the LINE channel secret is used.
        CORS_ORIGINS: comma-separated origins allowed to call the API from a browser (CORS), e.g.
            ``https://www.city.morioka.iwate.jp``; empty (default): same-origin only.
        MAX_BODY_BYTES: largest accepted request body, bytes (larger → 413).
        RATE_LIMIT: per-sender limit for ``/api/chat`` and LINE, a ``limits`` rate string such as
            ``20/minute``; empty or ``off`` disables it.
        RATE_LIMIT_STORAGE_URI: ``limits`` storage for the counters: ``memory://`` (one process)
            or e.g. ``redis://host:6379/0`` shared by several gateway processes.
        REPO_ROOT: repository root; derived from this file's location.
        DOMAIN_FILE: rasa domain holding the ``utter_service_unavailable`` response;
            derived as ``REPO_ROOT/domain.yml`` when unset.
        REVIEW_DB: SQLite file of the review records (振り返り用の記録, written by the action server;
            ``python -m bot review ...``), relative to ``REPO_ROOT`` unless absolute; default
            ``var/review.db`` (folder created on demand); empty: nothing is recorded.
            Read through :attr:`review_db_path`.
        REVIEW_LOW_CONFIDENCE: intent confidence (0-1) below which an answered question counts as
            low-confidence and its (redacted) text is kept for review.
        RETENTION_DAYS: retention of conversation data, days (保存期間): ``python -m bot purge``
            deletes tracker-store events and review records older than this (see bot/purge.py).

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
    RASA_URLS: str = ""
    RASA_REPLICAS: int = Field(default=1, ge=1, le=16)
    RASA_TF_THREADS: int = Field(default=1, ge=0, le=64)
    ACTION_SERVER_URL: str = "http://127.0.0.1:5055"
    GATEWAY_HOST: str = "0.0.0.0"
    GATEWAY_PORT: int = 8000
    RASA_TIMEOUT_S: float = 10.0
    MAX_TEXT_CHARS: int = 1000
    LOG_LEVEL: str = "INFO"
    FURIGANA_MAX_CHARS: int = 5000
    WEB_FRAME_ANCESTORS: str = ""
    LINE_CHANNEL_SECRET: str = ""
    LINE_CHANNEL_ACCESS_TOKEN: str = ""
    LINE_API_BASE_URL: str = "https://api.line.me"
    LINE_API_TIMEOUT_S: float = 10.0
    LINE_RETRY_ATTEMPTS: int = 3
    LINE_RETRY_BACKOFF_S: float = 0.5
    LINE_DEDUP_TTL_S: float = 86400.0
    PSEUDONYM_KEY: str = ""
    CORS_ORIGINS: str = ""
    MAX_BODY_BYTES: int = 65536
    RATE_LIMIT: str = "20/minute"
    RATE_LIMIT_STORAGE_URI: str = "memory://"
    REPO_ROOT: Path = DEFAULT_REPO_ROOT
    DOMAIN_FILE: Path | None = None
    REVIEW_DB: str = "var/review.db"
    REVIEW_LOW_CONFIDENCE: float = 0.6
    RETENTION_DAYS: int = 90

    @model_validator(mode="after")
    def _derive_paths(self) -> "Settings":
        """Fill ``DOMAIN_FILE`` from ``REPO_ROOT`` and strip trailing slashes from URLs."""
        if self.DOMAIN_FILE is None:
            self.DOMAIN_FILE = self.REPO_ROOT / "domain.yml"
        self.RASA_URL = self.RASA_URL.rstrip("/")
        self.ACTION_SERVER_URL = self.ACTION_SERVER_URL.rstrip("/")
        self.LINE_API_BASE_URL = self.LINE_API_BASE_URL.rstrip("/")
        return self

    @property
    def rasa_replicas(self) -> list[str]:
        """Rasa base URLs without trailing slashes: ``RASA_URLS`` split on commas
        (blanks and duplicates dropped, order kept), or ``[RASA_URL]`` when it is empty."""
        urls = [u.strip().rstrip("/") for u in self.RASA_URLS.split(",") if u.strip()]
        return list(dict.fromkeys(urls)) or [self.RASA_URL]

    @property
    def cors_origin_list(self) -> list[str]:
        """``CORS_ORIGINS`` split on commas (blanks dropped, trailing slashes removed)."""
        return [o.strip().rstrip("/") for o in self.CORS_ORIGINS.split(",") if o.strip()]

    @property
    def line_enabled(self) -> bool:
        """True when both the LINE channel secret and access token are set."""
        return bool(self.LINE_CHANNEL_SECRET and self.LINE_CHANNEL_ACCESS_TOKEN)

    @property
    def review_db_path(self) -> Path | None:
        """The review store file (``REVIEW_DB`` resolved against ``REPO_ROOT``), None when disabled."""
        if not self.REVIEW_DB.strip():
            return None
        path = Path(self.REVIEW_DB.strip())
        return path if path.is_absolute() else self.REPO_ROOT / path

    @property
    def city_file(self) -> Path:
        """Path of the city profile ``procedures/cities/<CITY>/city.yml``."""
        return self.REPO_ROOT / "procedures" / "cities" / self.CITY / "city.yml"


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide :class:`Settings` (read once, then cached)."""
    return Settings()
