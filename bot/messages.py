"""Citizen-facing gateway messages, loaded once at startup (never hard-coded in Python).

The only message the gateway writes itself is the apology sent when rasa is
unavailable. Its template is the domain response ``utter_service_unavailable``
(``{city_name}``, ``{city_phone}`` and ``{city_contact}`` placeholders), filled
from the city profile ``procedures/cities/<CITY>/city.yml`` (keys ``name``,
``phone``, ``contact_text``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_UNAVAILABLE_RESPONSE = "utter_service_unavailable"


class MessagesError(RuntimeError):
    """The domain or the city profile is missing, unreadable or lacks a required key."""


@dataclass(frozen=True)
class CityProfile:
    """The parts of ``city.yml`` the gateway needs.

    Attributes:
        id: city id (directory name under ``procedures/cities/``).
        name: display name, e.g. ``盛岡市``.
        phone: main phone number, e.g. ``019-651-4111``.
        contact_text: one-line contact, e.g. ``盛岡市役所（代表 019-651-4111、平日 8:30〜17:15）``.
    """

    id: str
    name: str
    phone: str
    contact_text: str


@dataclass(frozen=True)
class GatewayMessages:
    """Texts the gateway sends on its own.

    Attributes:
        city: the loaded city profile.
        service_unavailable: the apology (placeholders already filled) answered
            when rasa is down, times out or fails.
    """

    city: CityProfile
    service_unavailable: str


class _KeepUnknown(dict):
    """``str.format_map`` mapping that leaves unknown ``{placeholders}`` untouched."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    """Read a YAML mapping. Raises :class:`MessagesError` if missing or not a mapping."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MessagesError(f"{what} が見つかりません / not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise MessagesError(f"{what} の YAML が不正です / invalid YAML: {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise MessagesError(f"{what} がマッピングではありません / not a mapping: {path}")
    return data


def load_city_profile(path: Path) -> CityProfile:
    """Load ``city.yml``.

    Args:
        path: ``procedures/cities/<CITY>/city.yml``.

    Returns:
        The city profile.

    Raises:
        MessagesError: file missing/invalid or ``name``/``phone``/``contact_text`` missing.
    """
    data = _read_yaml(path, "市区町村プロフィール (city.yml)")
    missing = [k for k in ("name", "phone", "contact_text") if not data.get(k)]
    if missing:
        raise MessagesError(f"{path}: 必須キーがありません / missing keys: {', '.join(missing)}")
    return CityProfile(
        id=str(data.get("id") or path.parent.name),
        name=str(data["name"]),
        phone=str(data["phone"]),
        contact_text=str(data["contact_text"]),
    )


def load_response_text(domain_file: Path, response: str) -> str:
    """Return the text of the first variant of a domain response.

    Args:
        domain_file: rasa ``domain.yml``.
        response: response name, e.g. ``utter_service_unavailable``.

    Returns:
        The raw template text (placeholders not filled).

    Raises:
        MessagesError: domain missing/invalid, or the response has no text variant.
    """
    domain = _read_yaml(domain_file, "domain.yml")
    variants = (domain.get("responses") or {}).get(response) or []
    for variant in variants:
        if isinstance(variant, dict) and isinstance(variant.get("text"), str) and variant["text"].strip():
            return variant["text"]
    raise MessagesError(f"{domain_file}: responses.{response} に text がありません / has no text variant")


def load_gateway_messages(domain_file: Path, city_file: Path) -> GatewayMessages:
    """Load the city profile and fill the apology template (call once, at startup).

    Args:
        domain_file: rasa ``domain.yml`` holding ``utter_service_unavailable``.
        city_file: ``procedures/cities/<CITY>/city.yml``.

    Returns:
        The gateway messages with placeholders ``{city_name}``, ``{city_phone}``,
        ``{city_contact}`` filled (unknown placeholders are left as they are).

    Raises:
        MessagesError: see :func:`load_city_profile` and :func:`load_response_text`.
    """
    city = load_city_profile(city_file)
    template = load_response_text(domain_file, SERVICE_UNAVAILABLE_RESPONSE)
    try:
        text = template.format_map(
            _KeepUnknown(city_name=city.name, city_phone=city.phone, city_contact=city.contact_text)
        )
    except (ValueError, IndexError) as exc:
        raise MessagesError(
            f"{domain_file}: {SERVICE_UNAVAILABLE_RESPONSE} のプレースホルダが不正です / bad placeholder: {exc}"
        ) from exc
    return GatewayMessages(city=city, service_unavailable=text.strip())
