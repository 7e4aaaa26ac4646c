"""Citizen-facing gateway messages, loaded once at startup (never hard-coded in Python).

The only message the gateway writes itself is the apology sent when rasa is unavailable. Its
template is the domain response ``utter_service_unavailable`` (placeholders ``{city_name}``,
``{city_phone}``, ``{city_contact}``), filled from the city profile
``procedures/cities/<CITY>/city.yml`` read by :func:`procedures.catalogue.load_city`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from procedures.answer import TemplateError, Templates
from procedures.catalogue import CatalogueError, City, load_city

SERVICE_UNAVAILABLE_RESPONSE = "utter_service_unavailable"


class MessagesError(RuntimeError):
    """The domain or the city profile is missing, unreadable or lacks a required key."""


@dataclass(frozen=True)
class GatewayMessages:
    """Texts the gateway sends on its own.

    Attributes:
        city: the loaded city profile.
        service_unavailable: the apology (placeholders filled) answered when rasa is down,
            times out, fails or answers nothing.
    """

    city: City
    service_unavailable: str


def load_gateway_messages(domain_file: Path, city_file: Path) -> GatewayMessages:
    """Load the city profile and fill the apology template (call once, at startup).

    Args:
        domain_file: rasa ``domain.yml`` holding ``utter_service_unavailable``.
        city_file: ``procedures/cities/<CITY>/city.yml``.
    Returns:
        The gateway messages.
    Raises:
        MessagesError: a file is missing or invalid, or the response / a city key is missing.
    """
    try:
        city = load_city(city_file.parent.name, city_file.parent.parent)
        text = Templates.from_domain_file(domain_file).render(
            SERVICE_UNAVAILABLE_RESPONSE, city_name=city.name, city_phone=city.phone, city_contact=city.contact_text
        )
    except (CatalogueError, TemplateError, OSError, yaml.YAMLError) as exc:
        raise MessagesError(f"ゲートウェイの文面を読み込めません / cannot load gateway messages: {exc}") from exc
    return GatewayMessages(city=city, service_unavailable=text.strip())
