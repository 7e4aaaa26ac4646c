"""Shared fixtures (keep small): gateway settings without network or a real rasa."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import DEFAULT_REPO_ROOT, Settings

REPO_ROOT = DEFAULT_REPO_ROOT
REAL_DOMAIN = REPO_ROOT / "domain.yml"
FAKE_RASA_URL = "http://rasa.test"
FAKE_ACTIONS_URL = "http://actions.test"


@pytest.fixture
def city_profile() -> dict[str, Any]:
    """The real ``procedures/cities/morioka/city.yml`` as a dict."""
    return yaml.safe_load((REPO_ROOT / "procedures/cities/morioka/city.yml").read_text(encoding="utf-8"))


@pytest.fixture
def domain_file() -> Path:
    """The real domain.yml (holds ``utter_service_unavailable``)."""
    return REAL_DOMAIN


@pytest.fixture
def settings(domain_file: Path) -> Settings:
    """Settings pointing at fake rasa/action-server URLs (mocked with respx), no .env."""
    return Settings(
        _env_file=None,
        REPO_ROOT=REPO_ROOT,
        CITY="morioka",
        RASA_URL=FAKE_RASA_URL,
        ACTION_SERVER_URL=FAKE_ACTIONS_URL,
        RASA_TIMEOUT_S=1.0,
        MAX_TEXT_CHARS=1000,
        DOMAIN_FILE=domain_file,
    )


@pytest.fixture(autouse=True)
def _review_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes review records (bot/review) to its own temporary store, never var/review.db."""
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "review.db"))
    from bot.config import get_settings

    get_settings.cache_clear()
    try:
        from actions import actions
    except ImportError:  # pragma: no cover - rasa_sdk missing
        return
    actions.review_store.cache_clear()
