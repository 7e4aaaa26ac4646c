"""The citizens' web chat: ``GET /`` (chat page), ``GET /widget.js`` (embeddable widget) and
``GET /static/{name}`` (the page's script and style sheet).

The page is plain HTML/CSS/JS from ``bot/static/`` (no build step). It talks to ``POST
/api/chat`` and ``POST /api/furigana`` on the same origin. The city's name, contact and the
channel labels (domain.yml ``utter_label_*``) are put into the page as a JSON data block, so
another city needs no code change. All the page's own wording is in ``bot/static/index.html``.

Security: the page is sent with a Content-Security-Policy that allows scripts, styles and
requests only from this origin (no inline script), and ``frame-ancestors`` limited to
``WEB_FRAME_ANCESTORS`` (default: this origin and the city's website, see :mod:`bot.config`).
The page's script builds the DOM with ``textContent`` only, so nothing a citizen types becomes
HTML (WCAG / OWASP XSS prevention).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from bot.config import Settings
from bot.deps import MessagesDep, SettingsDep
from bot.messages import GatewayMessages
from procedures.answer import Templates
from procedures.catalogue import CHANNELS

router = APIRouter(tags=["web"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

#: Files served under /static/ (name → media type); anything else is 404.
STATIC_FILES = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
}

#: Labels shown on cards: the four channels and 土日・休日 (channel lists).
LABELS = (*CHANNELS, "weekend")

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-cache",
}


def frame_ancestors(settings: Settings, city_website: str) -> str:
    """CSP ``frame-ancestors`` sources: ``WEB_FRAME_ANCESTORS`` when set, else ``'self'`` and the
    origin of the city's website (e.g. ``'self' https://www.city.morioka.iwate.jp``).

    Tokens containing ``;`` or ``,`` (which would end the directive) are dropped.
    """
    configured = settings.WEB_FRAME_ANCESTORS.split()
    if not configured:
        configured = ["'self'"]
        parts = urlsplit(city_website)
        if parts.scheme in ("http", "https") and parts.netloc:
            configured.append(f"{parts.scheme}://{parts.netloc}")
    return " ".join(t for t in configured if ";" not in t and "," not in t) or "'none'"


def content_security_policy(settings: Settings, city_website: str) -> str:
    """The page's Content-Security-Policy header value (same-origin only, no inline script)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors(settings, city_website)}",
        ]
    )


def json_for_html(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` block: ``<``, ``>`` and ``&`` are
    written as ``\\u003c`` …, so no text can close the block."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_config(settings: Settings, messages: GatewayMessages) -> dict[str, Any]:
    """Data the page needs: ``{"city": {"name", "phone", "contact", "website"},
    "channel_labels": {channel id: label}, "max_chars": int}``.

    Raises:
        procedures.answer.TemplateError: a ``utter_label_*`` response is missing in domain.yml.
    """
    assert settings.DOMAIN_FILE is not None  # derived in Settings
    templates = Templates.from_domain_file(settings.DOMAIN_FILE)
    city = messages.city
    return {
        "city": {"name": city.name, "phone": city.phone, "contact": city.contact_text, "website": city.website},
        "channel_labels": {label: templates.render(f"utter_label_{label}") for label in LABELS},
        "max_chars": settings.MAX_TEXT_CHARS,
    }


def render_page(settings: Settings, messages: GatewayMessages) -> str:
    """``bot/static/index.html`` with ``{{CITY_NAME}}`` (HTML-escaped) and ``{{CONFIG_JSON}}``
    (see :func:`page_config`, :func:`json_for_html`) filled in."""
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return template.replace("{{CITY_NAME}}", html.escape(messages.city.name)).replace(
        "{{CONFIG_JSON}}", json_for_html(page_config(settings, messages))
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request, settings: SettingsDep, messages: MessagesDep) -> HTMLResponse:
    """The chat page (rendered once per app, then kept on ``app.state``)."""
    page = getattr(request.app.state, "web_page", None)
    if page is None:
        page = request.app.state.web_page = render_page(settings, messages)
    headers = {**_COMMON_HEADERS, "Content-Security-Policy": content_security_policy(settings, messages.city.website)}
    return HTMLResponse(page, headers=headers)


@router.get("/widget.js", include_in_schema=False)
def widget_script() -> FileResponse:
    """The embeddable widget: ``<script src="https://<gateway>/widget.js" async></script>``."""
    return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript; charset=utf-8", headers=_COMMON_HEADERS)


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    """The page's script and style sheet (only the files in :data:`STATIC_FILES`).

    Raises:
        HTTPException: 404 for any other name.
    """
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="ファイルがありません / not found")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_COMMON_HEADERS)
