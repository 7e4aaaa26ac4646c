"""Custom actions with CollectingDispatcher and saved trackers (tests/data/trackers/*.json), as in
RasaHQ's financial-demo: what the citizen would see for each conversation state."""
import json
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import actions
from actions.actions import ActionAnswerProcedure, ActionSessionStart

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ROOT / "tests" / "data" / "trackers"


@pytest.fixture(scope="module")
def domain():
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


def load_tracker(name):
    return Tracker.from_dict(json.loads((TRACKERS / f"{name}.json").read_text(encoding="utf-8")))


async def run(action, name, domain):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, load_tracker(name), domain)
    return dispatcher.messages, events


async def test_convenience_store_question_answers_yes_with_card(domain):
    messages, events = await run(ActionAnswerProcedure(), "juminhyo_convenience_store", domain)
    assert len(messages) == 2 and messages[1]["response"] == "utter_ask_resolved"
    text = messages[0]["text"]
    assert text.startswith("はい、住民票の写しの交付はコンビニでできます。")
    assert "マイナンバーカード" in text and "https://" in text
    card = messages[0]["custom"]
    assert card["type"] == "procedure" and card["procedure"]["id"] == "juminhyo_copy"
    assert card["procedure"]["channels"]["convenience_store"]["available"] is True
    assert SlotSet("procedure", "juminhyo_copy") in events


async def test_unverified_facts_are_flagged(domain):
    messages, _ = await run(ActionAnswerProcedure(), "juminhyo_convenience_store", domain)
    card = messages[0]["custom"]["procedure"]
    if not card["verified"]:
        assert "公式ページでまだ確認できていない" in messages[0]["text"]
        assert card["checked"] == "unverified"


async def test_follow_up_uses_procedure_from_slot(domain):
    messages, events = await run(ActionAnswerProcedure(), "followup_fee_after_juminhyo", domain)
    assert messages[0]["text"].startswith("住民票の写しの交付の手数料です。")
    assert messages[0]["custom"]["procedure"]["id"] == "juminhyo_copy"


async def test_moving_asks_back_which_kind_of_move(domain):
    messages, events = await run(ActionAnswerProcedure(), "moving_ambiguous", domain)
    buttons = messages[0]["buttons"]
    assert [b["title"] for b in buttons] == ["市外への引越し", "市外からの引越し", "市内での引越し"]
    assert all(b["payload"].startswith('/ask_procedure{"life_event": ') for b in buttons)
    assert events == [], "the slot is not set until the citizen chooses"


async def test_nothing_fits_gives_city_contact(domain):
    messages, events = await run(ActionAnswerProcedure(), "nothing_fits", domain)
    assert "019-651-4111" in messages[0]["text"]
    assert not messages[0].get("custom") and events == []


async def test_kana_only_question_without_entity_is_found_by_search(domain):
    messages, _ = await run(ActionAnswerProcedure(), "typo_without_entity", domain)
    assert messages[0]["custom"]["procedure"]["id"] == "inkan_certificate"
    assert "必要なもの" in messages[0]["text"]


async def test_internal_failure_apologises_instead_of_going_silent(domain, monkeypatch):
    def broken():
        raise RuntimeError("index broken")

    monkeypatch.setattr(actions, "procedure_index", broken)
    messages, events = await run(ActionAnswerProcedure(), "juminhyo_convenience_store", domain)
    assert [m["response"] for m in messages] == ["utter_action_error"]
    assert events == []


async def test_session_start_sets_city_slots(domain):
    messages, events = await run(ActionSessionStart(), "nothing_fits", domain)
    assert events[0] == SessionStarted()
    assert SlotSet("city_contact", "盛岡市役所（代表 019-651-4111、平日 8:30〜17:15）") in events
    assert messages == []
