"""Render the gateway's structured reply as LINE message objects (LINE 向けメッセージの組み立て).

Input: the normalized reply of :func:`bot.rasa_client.normalize_messages`, the same one the web
widget renders: ``[{"text": str, "buttons"?: [{"title", "payload"}], "custom"?: {...}}]``.
Output: LINE message objects as JSON dicts (Messaging API field names, e.g. ``quickReply``),
ready for ``ReplyMessageRequest.from_dict``:

- each non-empty ``text`` → a text message (at most 5000 UTF-16 units, longer text is cut with …);
- a procedure card (``custom = {"type": "procedure", ...}`` from :func:`procedures.answer.to_card`)
  → a Flex Message bubble: name, summary, each available channel (visit-free first) with its
  open-now state, hours and fee, an unverified note, and link buttons (channel page, official page,
  phone). Life-event and channel-list cards are already written out in the text and their choices
  come as buttons, so they need no Flex Message;
- all buttons → quick replies on the LAST message (LINE shows quick replies only there): at most 13,
  labels at most 20 characters, postback actions with ``data`` = the Rasa payload and
  ``displayText`` = the title (what the citizen sees as their own message);
- at most 5 messages per reply (a reply token is single-use): adjacent texts are joined first,
  then cards beyond the fifth message are dropped (their facts are in the text already).

Limits are from the LINE Messaging API reference (message objects, quick reply, postback action,
Flex Message) and "テキストの文字数のカウント" (text length is counted in UTF-16 code units).
Every visible word comes from domain.yml responses through :class:`procedures.answer.Templates`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterable, Mapping, Sequence

from procedures import hours
from procedures.answer import Templates, format_datetime, format_time

logger = logging.getLogger(__name__)

#: One reply call carries at most this many messages.
MAX_MESSAGES = 5
#: Text message length limit (UTF-16 code units).
MAX_TEXT_UNITS = 5000
#: Quick reply: at most 13 items, labels at most 20 characters.
MAX_QUICK_REPLIES = 13
MAX_LABEL_CHARS = 20
#: Postback action ``data`` / ``displayText`` limits (characters).
MAX_POSTBACK_DATA = 300
MAX_DISPLAY_TEXT = 300
#: Flex Message ``altText`` limit used here (characters; the API's limit is not smaller).
MAX_ALT_TEXT = 400
#: URI action: at most 1000 characters, schemes http, https, tel.
MAX_URI_CHARS = 1000
#: Link buttons in the card footer.
MAX_CARD_BUTTONS = 3

#: Card colours: dark green for "open now", grey for closed, brown for the unverified note; all
#: reach a contrast of at least 4.5:1 on white (WCAG 2.1 AA for small text).
COLOR_OPEN = "#007A33"
COLOR_CLOSED = "#666666"
COLOR_NOTE = "#8A5300"


def utf16_len(text: str) -> int:
    """Length of ``text`` as LINE counts it: UTF-16 code units (🍎 counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int, *, utf16: bool = False) -> str:
    """``text`` cut to ``limit`` characters (UTF-16 units when ``utf16``), ending in … when cut."""
    size = utf16_len if utf16 else len
    if size(text) <= limit:
        return text
    out = text[: max(0, limit - 1)]  # a character is at least one UTF-16 unit
    while out and size(out) > limit - 1:
        out = out[:-1]
    return out + "…"


def _uri_ok(uri: Any) -> bool:
    return isinstance(uri, str) and uri.startswith(("https://", "http://", "tel:")) and len(uri) <= MAX_URI_CHARS


def quick_reply(buttons: Iterable[Mapping[str, str]]) -> dict[str, Any] | None:
    """Quick reply object for ``buttons`` ``[{"title", "payload"}]``; None when there are none.

    Each button becomes a postback action: ``label`` = the title cut to 20 characters,
    ``data`` = the Rasa payload (forwarded to rasa as text when tapped), ``displayText`` = the full
    title. A payload longer than 300 characters becomes a message action sending the title instead
    (rasa then understands the title as free text). Duplicates are dropped; at most 13 items.
    """
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for button in buttons:
        title = str(button.get("title", "")).strip()
        payload = str(button.get("payload", "") or title).strip()
        if not title or payload in seen:
            continue
        seen.add(payload)
        label = clip(title, MAX_LABEL_CHARS)
        if len(payload) <= MAX_POSTBACK_DATA:
            action = {"type": "postback", "label": label, "data": payload,
                      "displayText": clip(title, MAX_DISPLAY_TEXT)}
        else:
            action = {"type": "message", "label": label, "text": clip(title, MAX_DISPLAY_TEXT)}
        items.append({"type": "action", "action": action})
        if len(items) == MAX_QUICK_REPLIES:
            break
    return {"items": items} if items else None


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "text", "text": text, "wrap": True, **style}


def _fee(channel: Mapping[str, Any], t: Templates) -> str:
    """「手数料300円」「手数料は無料」, else the catalogue's fee note, else 「…公式ページでご確認ください」."""
    fee = channel.get("fee_yen")
    if isinstance(fee, int) and not isinstance(fee, bool):
        text = t.render("utter_fee_free") if fee == 0 else t.render("utter_fee_yen", fee_yen=f"{fee:,}")
        return text + (f"（{channel['fee_note']}）" if channel.get("fee_note") else "")
    return str(channel.get("fee_note") or t.render("utter_fee_unknown"))


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=hours.JST)


def channel_state(channel: Mapping[str, Any], label: str, t: Templates, now: dt.datetime) -> tuple[str, str] | None:
    """(line, colour) saying whether the channel takes requests now, from the card's ``open_now`` /
    ``closes_at`` / ``next_open`` (see :func:`procedures.answer.to_card`), e.g.
    (「コンビニは23:00まで利用できます。」, green); None when the card has no time information.
    Dates are shown in JST with utter_datetime / utter_time (a time only for today)."""
    open_now = channel.get("open_now")
    if open_now is None:
        return None
    if open_now:
        closes = _moment(channel.get("closes_at"))
        if closes is None:
            return t.render("utter_now_open", label=label), COLOR_OPEN
        same_day = closes.astimezone(hours.JST).date() == now.astimezone(hours.JST).date()
        until = format_time(closes, t) if same_day else format_datetime(closes, t)
        return t.render("utter_now_open_until", label=label, closes_at=until), COLOR_OPEN
    nxt = _moment(channel.get("next_open"))
    if nxt is None:
        return t.render("utter_now_closed", label=label), COLOR_CLOSED
    return t.render("utter_now_closed_next", label=label, next_open=format_datetime(nxt, t)), COLOR_CLOSED


def procedure_flex(
    card: Mapping[str, Any], t: Templates, city_name: str, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """Flex Message (one bubble) for a procedure card; None when the card has no ``name``.

    Args:
        card: ``{"type": "procedure", "procedure": {...}}`` as built by
            :func:`procedures.answer.to_card` (channels with ``open_now`` / ``next_open`` /
            ``closes_at`` as ISO 8601 +09:00 when the action knew the time).
        t: domain.yml text fragments (utter_label_*, utter_fee_*, utter_now_*, utter_line_card_*,
            utter_unverified_note, utter_datetime, utter_time, utter_weekday_*).
        city_name: the city's name for the unverified note (city.yml ``name``).
        now: the current time (aware), only to show today's closing time as a time; default: now.

    Returns:
        ``{"type": "flex", "altText", "contents": {"type": "bubble", ...}}``.

    Raises:
        procedures.answer.TemplateError: a fragment is missing from domain.yml.
    """
    proc = card.get("procedure") if isinstance(card, Mapping) else None
    if not isinstance(proc, Mapping) or not proc.get("name"):
        return None
    now = now or dt.datetime.now(hours.JST)
    name = str(proc["name"])
    channels: Mapping[str, Any] = proc.get("channels") or {}
    order = [c for c in (proc.get("channel_order") or []) if isinstance(channels.get(c), Mapping)]
    order = order or [c for c, ch in channels.items() if isinstance(ch, Mapping) and ch.get("available")]

    body: list[dict[str, Any]] = [_text(name, weight="bold", size="lg")]
    if proc.get("summary"):
        body.append(_text(str(proc["summary"]), size="sm", color="#555555"))
    for channel_id in order:
        channel = channels[channel_id]
        label = t.render(f"utter_label_{channel_id}")
        rows: list[dict[str, Any]] = [_text(label, weight="bold", size="md")]
        state = channel_state(channel, label, t, now)
        if state:
            rows.append(_text(state[0], size="sm", color=state[1]))
        if channel.get("hours"):
            rows.append(_text(str(channel["hours"]), size="xs", color="#555555"))
        rows.append(_text(_fee(channel, t), size="xs", color="#555555"))
        body.append({"type": "separator", "margin": "md"})
        body.append({"type": "box", "layout": "vertical", "margin": "md", "spacing": "xs", "contents": rows})
    if not proc.get("verified", False):
        body.append(_text(t.render("utter_unverified_note", city_name=city_name),
                          size="xxs", color=COLOR_NOTE, margin="lg"))

    buttons: list[dict[str, Any]] = []
    link = next(((c, channels[c]["url"]) for c in order if _uri_ok(channels[c].get("url"))), None)
    if link:
        label = t.render("utter_line_card_channel_link", label=t.render(f"utter_label_{link[0]}"))
        buttons.append({"type": "button", "style": "primary", "height": "sm",
                        "action": {"type": "uri", "label": clip(label, MAX_LABEL_CHARS), "uri": link[1]}})
    if _uri_ok(proc.get("source_url")):
        buttons.append({"type": "button", "style": "secondary" if buttons else "primary", "height": "sm",
                        "action": {"type": "uri", "label": clip(t.render("utter_line_card_official"), MAX_LABEL_CHARS),
                                   "uri": proc["source_url"]}})
    phone = "".join(ch for ch in str(proc.get("phone") or "") if ch.isdigit() or ch in "+-")
    if phone:
        buttons.append({"type": "button", "style": "link", "height": "sm",
                        "action": {"type": "uri", "label": clip(t.render("utter_line_card_call"), MAX_LABEL_CHARS),
                                   "uri": f"tel:{phone}"}})

    bubble: dict[str, Any] = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
    }
    if buttons:
        bubble["footer"] = {"type": "box", "layout": "vertical", "spacing": "sm",
                            "contents": buttons[:MAX_CARD_BUTTONS]}
    alt = clip(t.render("utter_line_card_alt", name=name), MAX_ALT_TEXT)
    return {"type": "flex", "altText": alt, "contents": bubble}


def _join_adjacent_texts(messages: list[dict[str, Any]]) -> bool:
    """Join the last pair of adjacent text messages (in place); False when there is none."""
    for i in range(len(messages) - 2, -1, -1):
        a, b = messages[i], messages[i + 1]
        if a["type"] == b["type"] == "text":
            a["text"] = clip(f"{a['text']}\n\n{b['text']}", MAX_TEXT_UNITS, utf16=True)
            del messages[i + 1]
            return True
    return False


def to_line_messages(
    reply: Sequence[Mapping[str, Any]], t: Templates, city_name: str, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The gateway reply as at most 5 LINE message objects (see the module docstring).

    Args:
        reply: ``[{"text", "buttons"?, "custom"?}]`` from :func:`bot.rasa_client.normalize_messages`.
        t: domain.yml text fragments for the Flex card.
        city_name: the city's name (city.yml ``name``) for the card's unverified note.
        now: current time (aware) for the card; default: now.

    Returns:
        LINE message dicts (``{"type": "text", "text"}`` / ``{"type": "flex", ...}``), the last one
        with ``quickReply`` when the reply had buttons; empty when the reply had nothing to show.

    Raises:
        procedures.answer.TemplateError: a card fragment is missing from domain.yml.
    """
    out: list[dict[str, Any]] = []
    buttons: list[Mapping[str, str]] = []
    for message in reply:
        text = str(message.get("text") or "").strip()
        if text:
            out.append({"type": "text", "text": clip(text, MAX_TEXT_UNITS, utf16=True)})
        custom = message.get("custom")
        if isinstance(custom, Mapping) and custom.get("type") == "procedure":
            flex = procedure_flex(custom, t, city_name, now)
            if flex:
                out.append(flex)
        buttons.extend(b for b in message.get("buttons") or [] if isinstance(b, Mapping))
    while len(out) > MAX_MESSAGES and _join_adjacent_texts(out):
        pass
    if len(out) > MAX_MESSAGES:
        logger.warning("LINE reply had %d messages; dropping cards beyond %d", len(out), MAX_MESSAGES)
        out = out[:MAX_MESSAGES]
    quick = quick_reply(buttons)
    if quick and out:
        out[-1]["quickReply"] = quick
    return out
