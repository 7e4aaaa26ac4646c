"""The citizens' web chat without a browser: the page, the widget script, the furigana API
(TestClient; no rasa needed). The page in a real browser: tests/browser/."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.furigana import align, furigana
from bot.main import create_app
from bot.messages import load_gateway_messages
from bot.routers.web import STATIC_DIR, frame_ancestors, render_page
from tests.conftest import FAKE_ACTIONS_URL, FAKE_RASA_URL, REAL_DOMAIN, REPO_ROOT


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """One app for the module (its start-up takes seconds); rasa is never called here."""
    app_settings = Settings(_env_file=None, REPO_ROOT=REPO_ROOT, CITY="morioka", RASA_URL=FAKE_RASA_URL,
                            ACTION_SERVER_URL=FAKE_ACTIONS_URL, DOMAIN_FILE=REAL_DOMAIN)
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


def page_config(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="chat-config">(.*?)</script>', html, re.S)
    assert match, "the page carries its configuration as a JSON data block"
    return json.loads(match.group(1))


# -- the page ----------------------------------------------------------------------------------


def test_page_is_japanese_with_the_city_name_and_channel_labels(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert '<html lang="ja">' in html
    assert "<title>盛岡市 手続き案内チャット</title>" in html
    assert 'name="viewport"' in html, "phone-width layout"
    config = page_config(html)
    assert config["city"]["name"] == "盛岡市" and config["city"]["phone"]
    assert config["channel_labels"]["convenience_store"] == "コンビニ"
    assert config["channel_labels"]["counter"] == "窓口"
    assert set(config["channel_labels"]) == {"online", "convenience_store", "mail", "counter", "weekend"}
    assert config["max_chars"] == 1000
    assert '<script src="/static/chat.js" defer></script>' in html
    assert "{{" not in html, "every placeholder is filled"


def test_page_has_labelled_controls_and_a_live_region(client: TestClient) -> None:
    html = client.get("/").text
    assert '<label for="chat-input"' in html
    assert 'aria-live="polite"' in html
    for size in ("標準", "大", "特大"):
        assert f">{size}</button>" in html
    assert 'id="furigana-toggle"' in html and 'aria-pressed="false"' in html


def test_page_is_sent_with_a_strict_content_security_policy(client: TestClient) -> None:
    resp = client.get("/")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "object-src 'none'" in csp
    # by default the city's own website may embed the page (the widget's iframe)
    assert "frame-ancestors 'self' https://www.city.morioka.iwate.jp" in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in resp.text, "no inline script (CSP script-src 'self')"


def test_frame_ancestors_setting_and_no_directive_injection(settings: Settings) -> None:
    custom = settings.model_copy(update={"WEB_FRAME_ANCESTORS": "https://a.example.jp  https://b.example.jp"})
    assert frame_ancestors(custom, "https://x.example.jp/") == "https://a.example.jp https://b.example.jp"
    evil = settings.model_copy(update={"WEB_FRAME_ANCESTORS": "https://a.example.jp; script-src *"})
    assert ";" not in frame_ancestors(evil, "https://x.example.jp/")
    assert frame_ancestors(settings, "not a url") == "'self'"


def test_city_data_cannot_break_out_of_the_page(settings: Settings) -> None:
    """Even odd city data (a name with markup) stays text in the title and inside the JSON block."""
    assert settings.DOMAIN_FILE is not None
    messages = load_gateway_messages(settings.DOMAIN_FILE, settings.city_file)
    evil_city = dataclasses.replace(messages.city, name="</script><script>alert(1)</script>")
    html = render_page(settings, dataclasses.replace(messages, city=evil_city))
    assert "<script>alert(1)" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html
    assert page_config(html)["city"]["name"] == "</script><script>alert(1)</script>"


def test_widget_script_is_served_as_javascript(client: TestClient) -> None:
    resp = client.get("/widget.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/javascript")
    assert "aria-expanded" in resp.text and "iframe" in resp.text


@pytest.mark.parametrize("name, kind", [("chat.js", "text/javascript"), ("chat.css", "text/css")])
def test_static_files(client: TestClient, name: str, kind: str) -> None:
    resp = client.get(f"/static/{name}")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith(kind)


@pytest.mark.parametrize("name", ["index.html", "widget.js.bak", "..%2Fweb.py", "%2e%2e%2fconfig.py"])
def test_only_listed_static_files_are_served(client: TestClient, name: str) -> None:
    assert client.get(f"/static/{name}").status_code == 404


def test_page_script_never_writes_html() -> None:
    """Item 4: the page builds the DOM from text only, so nothing typed can become markup."""
    for name in ("chat.js", "widget.js"):
        source = (STATIC_DIR / name).read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, f"{name} uses {sink}"


# -- furigana --------------------------------------------------------------------------------


def readings(body: dict) -> dict[str, str]:
    return {s["text"]: s["reading"] for s in body["segments"] if "reading" in s}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("住民票", {"住民票": "じゅうみんひょう"}),
        ("印鑑登録証明書", {"印鑑登録証明書": "いんかんとうろくしょうめいしょ"}),
        ("転入届", {"転入届": "てんにゅうとどけ"}),
        ("住民票の写しを取りたい", {"住民票": "じゅうみんひょう", "写": "うつ", "取": "と"}),
    ],
)
def test_furigana_readings(client: TestClient, text: str, expected: dict[str, str]) -> None:
    resp = client.post("/api/furigana", json={"text": text})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert readings(body) == expected
    assert "".join(s["text"] for s in body["segments"]) == text


def test_furigana_only_over_kanji_and_keeps_the_text_exactly() -> None:
    text = "引っ越しの手続きは 8:30〜17:15 です。\nコンビニでも取れます"
    segments = furigana(text)
    assert "".join(s["text"] for s in segments) == text
    assert all(re.search(r"[\u4e00-\u9fff]", s["text"]) for s in segments if "reading" in s)
    assert not any("reading" in s for s in segments if not re.search(r"[\u4e00-\u9fff]", s["text"]))
    assert align("引っ越し", "ひっこし") == [
        {"text": "引", "reading": "ひ"}, {"text": "っ"}, {"text": "越", "reading": "こ"}, {"text": "し"}
    ]


def test_furigana_of_markup_is_plain_text(client: TestClient) -> None:
    text = '<script>alert("住所")</script><img src=x onerror=alert(1)>'
    body = client.post("/api/furigana", json={"text": text}).json()
    assert "".join(s["text"] for s in body["segments"]) == text
    assert readings(body) == {"住所": "じゅうしょ"}


@pytest.mark.parametrize(
    "body, status",
    [
        ({}, 422),
        ({"text": ""}, 422),
        ({"text": "   "}, 422),
        ({"text": 123}, 422),
        ({"text": "あ" * 5001}, 422),
        (["住民票"], 422),
    ],
)
def test_furigana_bad_input_is_a_clear_4xx(client: TestClient, body: object, status: int) -> None:
    resp = client.post("/api/furigana", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["detail"][0]["msg"]


def test_furigana_invalid_json_is_400(client: TestClient) -> None:
    resp = client.post("/api/furigana", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "JSON" in resp.json()["detail"]
