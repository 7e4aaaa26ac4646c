"""FAQ actions with CollectingDispatcher: what the citizen sees when a candidate button is chosen,
when nothing in the catalogue fits but the FAQ does, and when neither does."""
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions
from actions.actions import ActionAnswerFaq, ActionAnswerProcedure

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def domain():
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def no_review_records(monkeypatch):
    monkeypatch.setattr(actions, "review_store", lambda: None)


def tracker(text, intent, entities=()):
    message = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": list(entities)}
    return Tracker("faq-test", {"procedure": None}, message, [{"event": "user", "text": text, "parse_data": message}],
                   False, None, {}, "action_listen")


async def run(action, t, domain):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, domain)
    return dispatcher.messages, events


async def test_candidate_button_answers_that_entry(domain):
    t = tracker('/ask_faq{"faq_id": "18"}', "ask_faq", [{"entity": "faq_id", "value": "18"}])
    messages, events = await run(ActionAnswerFaq(), t, domain)
    assert len(messages) == 1 and events == []
    assert "【マイナンバーカードをなくしました。】" in messages[0]["text"]
    assert "0120-95-0178" in messages[0]["text"]
    assert "https://www.city.morioka.iwate.jp/" in messages[0]["text"]


async def test_unknown_faq_id_says_not_known_with_contact(domain):
    t = tracker('/ask_faq{"faq_id": "999"}', "ask_faq", [{"entity": "faq_id", "value": "999"}])
    messages, _ = await run(ActionAnswerFaq(), t, domain)
    assert messages[0]["text"].startswith("申し訳ありません。そのご質問への答えが見つかりませんでした。")
    assert "019-651-4111" in messages[0]["text"]


async def test_nothing_in_catalogue_but_faq_fits(domain):
    messages, events = await run(ActionAnswerProcedure(), tracker("台風で家が壊れた", "nlu_fallback"), domain)
    assert messages[0]["text"].startswith("よくある質問からご案内します。")
    assert "罹災証明書" in messages[0]["text"]
    assert "https://www.city.morioka.iwate.jp/kurashi/anzen_anshin/bousai/1049191/1049209.html" in messages[0]["text"]
    assert events == [], "an FAQ answer sets no procedure slot"


async def test_neither_catalogue_nor_faq_gives_city_contact(domain):
    messages, _ = await run(ActionAnswerProcedure(), tracker("ふるさと納税の返礼品を選びたい", "nlu_fallback"), domain)
    assert len(messages) == 1
    assert "お探しの手続きが見つかりませんでした" in messages[0]["text"] and "019-651-4111" in messages[0]["text"]


async def test_procedure_answers_are_not_replaced_by_the_faq(domain):
    messages, _ = await run(ActionAnswerProcedure(), tracker("住民票の写しをコンビニで取れますか", "ask_procedure"), domain)
    assert not messages[0]["text"].startswith("よくある質問")
    assert messages[0]["custom"]["procedure"]["id"] == "juminhyo_copy"


async def test_broken_faq_file_still_gives_the_not_found_reply(domain, monkeypatch):
    def broken(city_id):
        raise ValueError("faq.csv 3行目: 質問 が空です")

    monkeypatch.setattr("bot.faq.answer.city_faq_index", broken)
    messages, _ = await run(ActionAnswerProcedure(), tracker("台風で家が壊れた", "nlu_fallback"), domain)
    assert "019-651-4111" in messages[0]["text"]


async def test_faq_action_failure_apologises(domain, monkeypatch):
    def broken(city_id):
        raise RuntimeError("index broken")

    monkeypatch.setattr(actions, "city_faq_index", broken)
    t = tracker('/ask_faq{"faq_id": "1"}', "ask_faq", [{"entity": "faq_id", "value": "1"}])
    messages, _ = await run(ActionAnswerFaq(), t, domain)
    assert [m["response"] for m in messages] == ["utter_action_error"]


async def test_asking_for_the_faq_itself_prompts_for_a_question(domain):
    """「よくある質問を見たい」 (intent ask_faq, no faq_id) asks what the citizen wants to know."""
    from rasa_sdk import Tracker

    tracker = Tracker("faq-prompt", {}, {"text": "よくある質問を見たい", "intent": {"name": "ask_faq", "confidence": 0.9},
                                          "entities": []}, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq().run(dispatcher, tracker, domain)
    assert [m.get("response") for m in dispatcher.messages] == ["utter_faq_prompt"]
