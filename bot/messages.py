"""Citizen-facing gateway messages, loaded once at startup (never hard-coded in Python).

The messages the gateway writes itself: the apology sent when rasa is unavailable (domain response
``utter_service_unavailable``), the polite "too many messages" answer (``utter_rate_limited``), and
for LINE the greeting after 友だち追加 (``utter_line_follow``), the answer to stickers, images and
other non-text messages (``utter_non_text``) and to an over-long message (``utter_text_too_long``).
Placeholders ``{city_name}``, ``{city_phone}``, ``{city_contact}``, ``{city_website}`` are filled
from the city profile ``procedures/cities/<CITY>/city.yml`` read by
:func:`procedures.catalogue.load_city`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from procedures.answer import TemplateError, Templates
from procedures.catalogue import CatalogueError, City, load_city

SERVICE_UNAVAILABLE_RESPONSE = "utter_service_unavailable"
#: Other domain responses the gateway sends itself → GatewayMessages attribute.
GATEWAY_RESPONSES = {
    "rate_limited": "utter_rate_limited",
    "line_follow": "utter_line_follow",
    "non_text": "utter_non_text",
    "text_too_long": "utter_text_too_long",
}


class MessagesError(RuntimeError):
    """The domain or the city profile is missing, unreadable or lacks a required key."""


@dataclass(frozen=True)
class GatewayMessages:
    """Texts the gateway sends on its own.

    Attributes:
        city: the loaded city profile.
        service_unavailable: the apology (placeholders filled) answered when rasa is down,
            times out, fails or answers nothing.
        rate_limited: answered instead of calling rasa when a sender is over ``RATE_LIMIT``.
        line_follow: LINE greeting after 友だち追加 (follow event): who we are, what we can do.
        non_text: answer to a LINE sticker, image, video, audio, file or location message.
        text_too_long: answer to a LINE message longer than ``MAX_TEXT_CHARS``.
    """

    city: City
    service_unavailable: str
    rate_limited: str = ""
    line_follow: str = ""
    non_text: str = ""
    text_too_long: str = ""


def load_gateway_messages(domain_file: Path, city_file: Path) -> GatewayMessages:
    """Load the city profile and fill the apology template (call once, at startup).

    Args:
        domain_file: rasa ``domain.yml`` holding ``utter_service_unavailable`` and the responses of
            :data:`GATEWAY_RESPONSES`.
        city_file: ``procedures/cities/<CITY>/city.yml``.
    Returns:
        The gateway messages.
    Raises:
        MessagesError: a file is missing or invalid, or the response / a city key is missing.
    """
    try:
        city = load_city(city_file.parent.name, city_file.parent.parent)
        templates = Templates.from_domain_file(domain_file)
        values = {"city_name": city.name, "city_phone": city.phone, "city_contact": city.contact_text,
                  "city_website": city.website}
        text = templates.render(SERVICE_UNAVAILABLE_RESPONSE, **values)
        others = {field: templates.render(name, **values).strip() for field, name in GATEWAY_RESPONSES.items()}
    except (CatalogueError, TemplateError, OSError, yaml.YAMLError) as exc:
        raise MessagesError(f"ゲートウェイの文面を読み込めません / cannot load gateway messages: {exc}") from exc
    return GatewayMessages(city=city, service_unavailable=text.strip(), **others)
