"""The web chat in a real browser (headless Debian chromium + Playwright) against the real stack:
citizens ask questions, press the bot's buttons, read the procedure cards; the conversation
survives a reload; what a citizen types stays text; furigana and text size work; the widget
opens the chat from the city's website; axe-core finds no serious accessibility violation.

Screenshots: results/browser/*.png. Run alone with
``PYTHONPATH=. .venv/bin/python -m pytest -q tests/browser`` (needs ``make browser-deps`` and a
trained model). About a minute, most of it loading the model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

#: Longest wait for the bot's answer in the page (ms); the first answer warms rasa up.
ANSWER_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.browser
expect.set_options(timeout=ANSWER_TIMEOUT_MS)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "results" / "browser"

CARD_QUESTION = "住民票の写しをコンビニで取れますか"


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot to results/browser/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_serious(page_or_frame: Any) -> list[dict[str, Any]]:
    """Run axe-core (all WCAG 2.0/2.1 A+AA rules and best practices) and return the violations
    whose impact is ``serious`` or ``critical``, as ``{"id", "impact", "help", "targets"}``."""
    result = page_or_frame.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def ask(page: Any, text: str) -> Any:
    """Type ``text`` into the input like a citizen, press Enter, wait for the answer; returns the
    locator of the bot messages that came with it."""
    before = page.locator("#log > li.msg.bot").count()
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")
    expect(page.locator("#log > li.msg.bot")).not_to_have_count(before)
    expect(page.locator("#typing")).to_be_hidden()
    return page.locator("#log > li.msg.bot").nth(before)


def assert_accessible(page_or_frame: Any, where: str) -> None:
    serious = axe_serious(page_or_frame)
    assert not serious, f"axe-core: serious/critical violations {where}: {serious}"


def test_procedure_card_shows_each_channel_with_state_fee_and_link(page: Any) -> None:
    page.evaluate(
        """() => { window.__typingSeen = false;
                   new MutationObserver(() => { if (!document.getElementById('typing').hidden) window.__typingSeen = true; })
                     .observe(document.getElementById('typing'), {attributes: true}); }"""
    )
    ask(page, CARD_QUESTION)
    assert page.evaluate("window.__typingSeen"), "a typing indicator is shown while the bot answers"
    card = page.locator("article.procedure-card").last
    expect(card).to_be_visible()
    expect(card.locator(".card-title")).to_contain_text("住民票の写し")
    labels = card.locator(".channel-label").all_inner_texts()
    assert "コンビニ" in labels and "窓口" in labels, labels
    assert labels.index("コンビニ") < labels.index("窓口"), "visit-free channels first"
    conbini = card.locator("li.channel-convenience_store")
    expect(conbini.locator(".status")).to_have_text(re.compile(r"利用できます|受付時間外"))
    expect(conbini.locator(".facts")).to_contain_text("手数料")
    expect(conbini.locator(".facts")).to_contain_text(re.compile(r"\d+円|無料|公式ページでご確認ください"))
    counter = card.locator("li.channel-counter")
    expect(counter.locator(".status")).to_have_text(re.compile(r"利用できます|受付時間外（次は\d+月\d+日\(.\) \d+:\d\d から）|受付時間外"))
    source = card.locator("a.source")
    assert source.get_attribute("href").startswith("https://")
    assert source.get_attribute("rel") == "noopener noreferrer"
    # the live region reads the new answer out
    expect(page.locator("#announcer")).to_contain_text("住民票")
    assert page.errors == []
    screenshot(page, "procedure_card")
    assert_accessible(page, "with a procedure card")


def test_buttons_are_choices_operable_by_keyboard(page: Any) -> None:
    answer = ask(page, "引っ越します")
    choices = answer.locator(".choices button")
    titles = choices.all_inner_texts()
    assert any("市外へ" in t for t in titles) and any("市外から" in t for t in titles) and any("市内" in t for t in titles), titles
    # keyboard only: focus the choice and press Enter
    before = page.locator("#log > li.msg.bot").count()
    choice = answer.locator(".choices button", has_text="市外から")
    choice.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#log > li.msg.bot")).not_to_have_count(before)
    # the citizen's bubble shows the button's title, not the payload
    user_bubble = page.locator("#log > li.msg.user .bubble").last
    expect(user_bubble).to_have_text("市外からの引越し")
    event_card = page.locator("article.life-event-card").last
    expect(event_card).to_be_visible()
    item = event_card.get_by_role("button", name="転入届", exact=True)
    expect(item).to_be_visible()
    expect(event_card).to_contain_text("来庁不要")
    screenshot(page, "life_event")
    before = page.locator("#log > li.msg.bot").count()
    item.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#log > li.msg.bot")).not_to_have_count(before)
    expect(page.locator("article.procedure-card").last.locator(".card-title")).to_have_text("転入届")
    assert not any(t.startswith("/") for t in page.locator("#log > li.msg.user .bubble").all_inner_texts())
    assert page.errors == []


def test_channel_list_card_and_show_all(page: Any) -> None:
    ask(page, "オンラインでできる手続きは？")
    card = page.locator("article.list-card").last
    expect(card.locator(".card-title")).to_contain_text("オンライン")
    items = card.locator("button.item-choice")
    shown = items.count()
    assert shown >= 3
    more = card.locator("button.show-all")
    if more.count():
        more.click()
        assert card.locator("button.item-choice").count() > shown
        # the focus moves to the first newly shown item (not lost on the removed button)
        assert page.evaluate("document.activeElement.classList.contains('item-choice')")
    screenshot(page, "channel_list")


def test_conversation_survives_a_reload(page: Any) -> None:
    ask(page, CARD_QUESTION)
    sender = page.evaluate("sessionStorage.getItem('chat.sender_id')")
    assert re.fullmatch(r"web-[0-9a-f]{24}", sender)
    count = page.locator("#log > li").count()
    page.reload()
    expect(page.locator("#log > li")).to_have_count(count)
    expect(page.locator("article.procedure-card .card-title").last).to_contain_text("住民票の写し")
    assert page.evaluate("sessionStorage.getItem('chat.sender_id')") == sender
    # the bot still knows what we talk about: the follow-up keeps the procedure
    ask(page, "手数料は？")
    expect(page.locator("article.procedure-card .card-title").last).to_contain_text("住民票の写し")
    # 「最初から」 starts a new conversation
    page.get_by_role("button", name="最初から").click()
    expect(page.locator("#log > li")).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('chat.sender_id')") != sender


def test_what_a_citizen_types_stays_text(page: Any) -> None:
    attacks = [
        "<script>window.__xss = 1</script>住民票",
        '<img src=x onerror="window.__xss = 2">印鑑証明',
    ]
    for text in attacks:
        ask(page, text)
        expect(page.locator("#log > li.msg.user .bubble").last).to_have_text(text)
    assert page.locator("#log img, #log script").count() == 0
    assert page.evaluate("window.__xss") is None
    page.reload()  # the history restored from sessionStorage stays text too
    expect(page.locator("#log > li.msg.user .bubble").first).to_have_text(attacks[0])
    assert page.locator("#log img, #log script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.errors == []


def test_network_failure_is_told_to_the_citizen(page: Any) -> None:
    page.route("**/api/chat", lambda route: route.abort())
    answer = ask(page, CARD_QUESTION)
    expect(answer).to_contain_text("通信できませんでした")
    expect(answer).to_contain_text("019-651-4111")


def test_furigana_and_text_size(page: Any) -> None:
    ask(page, CARD_QUESTION)
    toggle = page.get_by_role("button", name="ふりがな")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    ruby = page.locator("#log ruby", has_text="住民票")
    expect(ruby.first).to_be_visible()
    expect(ruby.first.locator("rt")).to_have_text("じゅうみんひょう")
    # Readings are hidden from screen readers (read once, not twice); counted in one snapshot,
    # since readings for later messages may still be arriving.
    assert page.evaluate(
        "() => [...document.querySelectorAll('#log rt')].every(rt => rt.getAttribute('aria-hidden') === 'true')"
    )
    page.get_by_role("button", name="特大").click()
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "24px"
    screenshot(page, "furigana_xlarge")
    assert_accessible(page, "with furigana on and the largest text")
    page.reload()  # both settings are remembered
    expect(page.get_by_role("button", name="特大")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#log rt").first).to_be_visible()
    page.get_by_role("button", name="ふりがな").click()
    expect(page.locator("#log rt")).to_have_count(0)
    page.get_by_role("button", name="標準").click()


def test_phone_width_layout(context: Any, gateway: dict[str, Any]) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(gateway["url"] + "/")
    # keyboard: the first Tab stop is the skip link, which leads to the input
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "chat-input"
    ask(page, CARD_QUESTION)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling"
    expect(page.locator("#chat-input")).to_be_in_viewport()
    screenshot(page, "phone")
    assert_accessible(page, "at phone width")


def test_widget_opens_the_chat_from_the_city_website(context: Any, gateway: dict[str, Any]) -> None:
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(f"{gateway['city_site']}/city-site.html?gateway={gateway['url']}")
    button = page.locator("#chat-widget-button")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#chat-widget-panel iframe")).to_have_count(0)  # nothing loaded before opening
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    frame = page.frame_locator("#chat-widget-panel iframe")
    frame.locator("#chat-input").fill(CARD_QUESTION)
    frame.locator("#chat-input").press("Enter")
    expect(frame.locator("article.procedure-card .card-title")).to_contain_text("住民票の写し")
    screenshot(page, "widget_open")
    assert_accessible(page, "on the city's page with the widget open")
    assert_accessible(page.locator("#chat-widget-panel iframe").element_handle().content_frame(), "inside the widget")
    # Escape inside the chat closes the panel and gives the focus back to the button
    frame.locator("#chat-input").press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#chat-widget-panel")).to_be_hidden()
    assert page.evaluate("document.activeElement.id") == "chat-widget-button"
    assert page.errors == []
