"""Learning from citizens: what the action server records (and does not), 「解決しましたか？」,
the staff CSV round trip into training data / FAQ, and the monthly report."""
import csv
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from typer.testing import CliRunner

from actions import actions
from actions.actions import ActionAnswerProcedure, ActionFeedback
from bot.privacy import log_id
from bot.review.exchange import EXPORT_COLUMNS, export_csv, import_csv
from bot.review.record import awaiting_feedback, feedback_turn, question_turn, record_safely
from bot.review.report import month_range, write_monthly_report
from bot.review.store import ReviewStore, Turn
from bot.staff.nlu_data import read_examples

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ROOT / "tests" / "data" / "trackers"
JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 21, 22, 5, tzinfo=JST)
PHONE = "090-1234-5678"


@pytest.fixture(scope="module")
def domain():
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh review store used by the actions, and a fixed clock."""
    review = ReviewStore(tmp_path / "var" / "review.db")
    monkeypatch.setattr(actions, "review_store", lambda: review)
    monkeypatch.setattr(actions, "current_time", lambda: NOW)
    return review


def tracker_state(name, **changes):
    state = json.loads((TRACKERS / f"{name}.json").read_text(encoding="utf-8"))
    state.update(changes)
    return state


async def run(action, state, domain):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, Tracker.from_dict(state), domain)
    return dispatcher.messages, events


# --- what is recorded -----------------------------------------------------------------------------

def test_text_is_kept_only_for_fallback_or_low_confidence_and_always_redacted():
    confident = question_turn("U123", NOW, "ask_procedure", 0.95, f"住民票 電話は{PHONE}", "juminhyo_copy", "entity", True, 0.6)
    assert confident.text is None and confident.reason is None and confident.answered
    low = question_turn("U123", NOW, "ask_fee", 0.41, f"電話{PHONE}の件でいくら", "juminhyo_copy", "context", False, 0.6)
    assert low.reason == "low_confidence" and PHONE not in low.text and "[電話番号]" in low.text
    fallback = question_turn("U123", NOW, "ask_procedure", 0.9, "ふるさと納税の返礼品", None, "none", False, 0.6)
    assert fallback.reason == "fallback" and not fallback.answered
    assert confident.sender == log_id("U123") and "U123" not in confident.sender
    assert confident.ts == "2026-11-21T22:05:00+09:00"


async def test_procedure_answer_asks_if_solved_and_records_without_text(store, domain):
    messages, events = await run(ActionAnswerProcedure(), tracker_state("juminhyo_convenience_store"), domain)
    assert messages[0]["text"].startswith("はい、住民票の写しの交付はコンビニでできます。")
    assert messages[-1]["response"] == "utter_ask_resolved"
    assert SlotSet("feedback_procedure", "juminhyo_copy") in events
    [turn] = store.turns()
    assert (turn.kind, turn.target, turn.answered, turn.feedback_offered, turn.text) == ("question", "juminhyo_copy", True, True, None)
    assert turn.sender == log_id("t1") and turn.confidence == pytest.approx(0.93)


async def test_follow_up_on_the_same_procedure_does_not_ask_again(store, domain):
    state = tracker_state("followup_fee_after_juminhyo")
    state["slots"]["feedback_procedure"] = "juminhyo_copy"
    messages, events = await run(ActionAnswerProcedure(), state, domain)
    assert all(m.get("response") != "utter_ask_resolved" for m in messages)
    assert not any(e.get("name") == "feedback_procedure" for e in events)
    assert store.turns()[0].feedback_offered is False


async def test_nothing_found_keeps_the_redacted_question_for_review(store, domain):
    state = tracker_state("nothing_fits")
    state["latest_message"]["text"] = f"ふるさと納税の返礼品を選びたい 連絡先 {PHONE}"
    messages, _ = await run(ActionAnswerProcedure(), state, domain)
    assert "019-651-4111" in messages[0]["text"]
    assert all(m.get("response") != "utter_ask_resolved" for m in messages), "no 解決しましたか after 見つかりません"
    [turn] = store.turns()
    assert turn.reason == "fallback" and turn.answered is False
    assert turn.text == "ふるさと納税の返礼品を選びたい 連絡先 [電話番号]"
    assert PHONE.encode() not in (store.path).read_bytes()


async def test_recording_failure_never_breaks_the_reply(tmp_path, monkeypatch, domain, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(actions, "review_store", lambda: ReviewStore(blocked / "review.db"))
    messages, events = await run(ActionAnswerProcedure(), tracker_state("juminhyo_convenience_store"), domain)
    assert messages[0]["custom"]["procedure"]["id"] == "juminhyo_copy"
    assert SlotSet("procedure", "juminhyo_copy") in events
    assert "review record failed" in caplog.text


def test_record_safely_skips_when_disabled():
    assert record_safely(lambda: None, lambda: 1 / 0) is None


# --- 「解決しましたか？」 ---------------------------------------------------------------------------

def conversation(answer_text, reply_intent, asked=True):
    """Events: the citizen asks, the bot answers (and asks 解決しましたか? when ``asked``), the citizen replies."""
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": answer_text, "parse_data": {"intent": {"name": "ask_procedure", "confidence": 0.9}}},
        {"event": "action", "name": "action_answer_procedure"},
        {"event": "bot", "text": "住民票の写しの交付は…"},
        {"event": "slot", "name": "procedure", "value": "juminhyo_copy"},
    ]
    if asked:
        events.append({"event": "slot", "name": "feedback_procedure", "value": "juminhyo_copy"})
    reply = {"text": "いいえ" if reply_intent == "deny" else "はい", "intent": {"name": reply_intent, "confidence": 0.99},
             "entities": []}
    events += [{"event": "action", "name": "action_listen"}, {"event": "user", "text": reply["text"], "parse_data": reply}]
    return {"sender_id": "web-abc", "slots": {"feedback_procedure": "juminhyo_copy" if asked else None},
            "latest_message": reply, "events": events}


def test_awaiting_feedback_only_right_after_the_question():
    assert awaiting_feedback(conversation("住民票がほしい", "affirm")["events"]) == {
        "procedure": "juminhyo_copy", "question": "住民票がほしい"}
    assert awaiting_feedback(conversation("住民票がほしい", "affirm", asked=False)["events"]) is None
    later = conversation("住民票がほしい", "affirm")["events"]
    later += [{"event": "action", "name": "utter_anything_else"}, {"event": "user", "text": "はい"}]
    assert awaiting_feedback(later) is None


async def test_yes_thanks_and_is_counted(store, domain):
    messages, events = await run(ActionFeedback(), conversation("住民票がほしい", "affirm"), domain)
    assert [m["response"] for m in messages] == ["utter_feedback_yes"] and events == []
    [turn] = store.turns()
    assert (turn.kind, turn.feedback, turn.target, turn.text) == ("feedback", "yes", "juminhyo_copy", None)


async def test_no_apologises_with_contact_and_keeps_the_redacted_question(store, domain):
    messages, _ = await run(ActionFeedback(), conversation(f"住民票を{PHONE}に送って", "deny"), domain)
    assert [m["response"] for m in messages] == ["utter_feedback_no"]
    assert "{city_contact}" in domain["responses"]["utter_feedback_no"][0]["text"]
    [turn] = store.turns()
    assert (turn.feedback, turn.reason) == ("no", "feedback_no")
    assert turn.text == "住民票を[電話番号]に送って"


async def test_yes_without_the_question_is_not_feedback(store, domain):
    messages, _ = await run(ActionFeedback(), conversation("住民票がほしい", "affirm", asked=False), domain)
    assert [m["response"] for m in messages] == ["utter_anything_else"]
    assert store.turns() == []


def test_domain_offers_yes_no_buttons_that_reach_action_feedback(domain):
    buttons = domain["responses"]["utter_ask_resolved"][0]["buttons"]
    assert [(b["title"], b["payload"]) for b in buttons] == [("はい", "/affirm"), ("いいえ", "/deny")]
    rules = yaml.safe_load((ROOT / "data/rules/chitchat.yml").read_text(encoding="utf-8"))["rules"]
    routed = {r["steps"][0]["intent"]: r["steps"][1]["action"] for r in rules if r["steps"][0].get("intent") in ("affirm", "deny")}
    assert routed == {"affirm": "action_feedback", "deny": "action_feedback"}


# --- CSV round trip ------------------------------------------------------------------------------

def fill(store):
    ids = {}
    for key, (intent, conf, text, resolved) in {
        "seal": ("nlu_fallback", 0.3, "はんこの登録をしたい", "none"),
        "fee": ("ask_procedure", 0.45, "なんぼかかるの", "bm25"),
        "trash": ("ask_procedure", 0.9, "古いテレビはどう捨てますか", "none"),
        "tax": ("ask_procedure", 0.9, "ふるさと納税はできますか", "none"),
        "faq": ("ask_procedure", 0.9, "ごみの日が知りたい", "none"),
        "bad": ("ask_procedure", 0.9, "よくわからない質問", "none"),
        "skip": ("ask_procedure", 0.9, "ラベルなしの質問", "none"),
    }.items():
        ids[key] = store.add(question_turn("U1", NOW, intent, conf, text, None, resolved, False, 0.6))
    store.add(question_turn("U1", NOW, "ask_procedure", 0.99, "住民票", "juminhyo_copy", "entity", True, 0.6))  # no text
    return ids


def label(path, labels):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for row in rows[1:]:
        for column, value in labels.get(int(row[0]), {}).items():
            row[header.index(column)] = value
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_export_import_round_trip(tmp_path):
    store = ReviewStore(tmp_path / "review.db")
    ids = fill(store)
    exported = tmp_path / "review.csv"
    assert export_csv(store, exported) == 7, "only rows with a kept text"
    raw = exported.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "BOM so that Excel opens UTF-8"
    header = next(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert header == [h for _, h in EXPORT_COLUMNS]

    faq = tmp_path / "faq.csv"
    faq.write_text("ID,質問,回答,カテゴリ,担当課,URL\ngomi-1,ごみの収集日は？,地区ごとのごみカレンダーをご覧ください。,ごみ,廃棄物対策課,https://example.jp/gomi\n",
                   encoding="utf-8")
    label_col, answer_col = EXPORT_COLUMNS[6][1], EXPORT_COLUMNS[7][1]
    label(exported, {
        ids["seal"]: {label_col: "inkan_registration"},
        ids["fee"]: {label_col: "ask_fee"},
        ids["trash"]: {label_col: "粗大ごみ"},
        ids["tax"]: {answer_col: "ふるさと納税は市のホームページからお申し込みください。"},
        ids["faq"]: {label_col: "gomi-1"},
        ids["bad"]: {label_col: "no_such_thing"},
    })
    examples_file = tmp_path / "staff_review.yml"
    result = import_csv(exported, ROOT, "morioka", store, NOW, examples_file=examples_file, faq_file=faq)
    assert len(result.errors) == 1 and "no_such_thing" in result.errors[0] and "7行目" in result.errors[0]
    assert not examples_file.exists() and faq.read_text(encoding="utf-8").count("\n") == 2, "nothing written on error"

    label(exported, {ids["bad"]: {label_col: ""}})
    result = import_csv(exported, ROOT, "morioka", store, NOW, examples_file=examples_file, faq_file=faq)
    assert result.errors == [] and result.unlabelled == 2
    assert [(e.intent, e.text) for e in read_examples([examples_file])] == [
        ("ask_procedure/inkan_registration", "はんこの登録をしたい"),
        ("ask_fee", "なんぼかかるの"),
        ("ask_procedure/oversized_garbage", "古いテレビはどう捨てますか"),
    ]
    with faq.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1] == {"ID": f"R{ids['tax']}", "質問": "ふるさと納税はできますか",
                       "回答": "ふるさと納税は市のホームページからお申し込みください。", "カテゴリ": "", "担当課": "", "URL": ""}
    assert rows[2]["ID"] == f"gomi-1-R{ids['faq']}" and rows[2]["質問"] == "ごみの日が知りたい"
    assert rows[2]["URL"] == "https://example.jp/gomi"
    assert store.get(ids["seal"]).imported_at and not store.get(ids["skip"]).imported_at

    # the same CSV again: nothing is added twice, with or without the store
    for again_store in (store, None):
        again = import_csv(exported, ROOT, "morioka", again_store, NOW, examples_file=examples_file, faq_file=faq)
        assert again.errors == [] and again.examples == [] and again.faq_rows == []
    assert len(read_examples([examples_file])) == 3 and len(faq.read_text(encoding="utf-8").splitlines()) == 4
    assert export_csv(store, tmp_path / "next.csv") == 2, "imported rows are not exported again"


def test_import_conflicting_label_is_an_error(tmp_path):
    store = ReviewStore(tmp_path / "review.db")
    turn_id = store.add(question_turn("U1", NOW, "nlu_fallback", 0.2, "手数料は？", None, "none", False, 0.6))
    exported = tmp_path / "review.csv"
    export_csv(store, exported)
    label(exported, {turn_id: {EXPORT_COLUMNS[6][1]: "juminhyo_copy"}})  # 「手数料は？」 is an ask_fee example
    result = import_csv(exported, ROOT, "morioka", store, NOW, examples_file=tmp_path / "x.yml", faq_file=tmp_path / "faq.csv")
    assert len(result.errors) == 1 and "ask_fee" in result.errors[0] and "data/nlu/followups.yml" in result.errors[0]


# --- monthly report ------------------------------------------------------------------------------

def test_monthly_report_numbers_charts_and_escaping(tmp_path):
    store = ReviewStore(tmp_path / "review.db")

    def at(day, hour):
        return dt.datetime(2026, 11, day, hour, 30, tzinfo=JST)

    for day, hour, target in [(1, 9, "juminhyo_copy"), (1, 22, "juminhyo_copy"), (2, 22, "inkan_certificate"), (30, 23, None)]:
        store.add(question_turn("U1", at(day, hour), "ask_procedure", 0.9, "<script>alert(1)</script>",
                                target, "entity" if target else "none", bool(target), 0.6))
    store.add(feedback_turn("U1", at(1, 9), True, "juminhyo_copy", "住民票"))
    store.add(feedback_turn("U1", at(1, 22), True, "juminhyo_copy", "住民票"))
    store.add(feedback_turn("U1", at(2, 22), False, "inkan_certificate", "印鑑証明"))
    store.add(question_turn("U1", dt.datetime(2026, 12, 1, 0, 0, tzinfo=JST), "ask_procedure", 0.9, "x", "juminhyo_copy",
                            "entity", True, 0.6))  # next month: not counted
    out = tmp_path / "report" / "2026-11.html"
    stats = write_monthly_report(store, "2026-11", out, names={"juminhyo_copy": "住民票の写しの交付"}, city_name="盛岡市")
    assert stats["questions"] == 4
    assert stats["per_day"][0] == (1, 2) and stats["per_day"][-1] == (30, 1) and len(stats["per_day"]) == 30
    assert stats["per_hour"][22] == 2 and stats["per_hour"][9] == 1 and sum(stats["per_hour"]) == 4
    assert stats["top"] == [("juminhyo_copy", 2), ("inkan_certificate", 1)]
    assert stats["unanswered_rate"] == pytest.approx(0.25)
    assert stats["resolution_rate"] == pytest.approx(2 / 3)
    page = out.read_text(encoding="utf-8")
    assert "盛岡市手続き案内チャットボット 月次レポート 2026年11月" in page
    assert "25.0%" in page and "66.7%" in page and "住民票の写しの交付" in page
    assert page.count("data:image/png;base64,") == 3
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_month_bounds_and_bad_month():
    assert month_range("2026-12")[:2] == ("2026-12-01T00:00:00+09:00", "2027-01-01T00:00:00+09:00")
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_range("11月")


def test_review_commands(tmp_path):
    from bot import cli

    db = tmp_path / "review.db"
    store = ReviewStore(db)
    store.add(question_turn("U1", NOW, "nlu_fallback", 0.2, "犬の登録", None, "none", False, 0.6))
    runner = CliRunner()
    exported = runner.invoke(cli.app, ["review", "export", "--db", str(db), "--out", str(tmp_path / "r.csv"), "--since", "2026-11-01"])
    assert exported.exit_code == 0 and "1件" in exported.output
    report = runner.invoke(cli.app, ["review", "report", "--month", "2026-11", "--db", str(db), "--out", str(tmp_path / "m.html")])
    assert report.exit_code == 0, report.output
    assert f"月次レポート: {tmp_path / 'm.html'}" in report.output and "未回答率 100.0%" in report.output
    bad = runner.invoke(cli.app, ["review", "report", "--month", "2026/11", "--db", str(db)])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


def test_turn_round_trips_through_sqlite(tmp_path):
    store = ReviewStore(tmp_path / "a" / "b.db")
    turn = Turn(ts=NOW.isoformat(), sender="abc", kind="question", intent="ask_fee", confidence=0.5, answered=True)
    turn.id = store.add(turn)
    assert store.turns() == [turn]


async def test_faq_action_turns_are_recorded_too(store, domain):
    from actions.actions import ActionAnswerFaq

    state = tracker_state("nothing_fits")
    state["latest_message"]["intent"] = {"name": "out_of_scope", "confidence": 0.97}
    state["latest_message"]["text"] = "宇宙人の住民登録は？ xxqzy"
    messages, _ = await run(ActionAnswerFaq(), state, domain)
    assert messages, "the bot never goes silent"
    [turn] = store.turns()
    assert turn.intent == "out_of_scope" and turn.sender == log_id("t4")
    if turn.resolved == "none":
        assert turn.reason == "fallback" and turn.text == "宇宙人の住民登録は? xxqzy"
    else:
        assert turn.resolved == "faq" and turn.text is None


def test_records_survive_and_are_visible_while_the_writer_stays_open(tmp_path):
    """The action server keeps its write connection; staff commands and purge still see every row,
    and a removed file (purge of everything, a restore) is recreated instead of written into the void."""
    import sqlite3

    db = tmp_path / "review.db"
    store = ReviewStore(db)
    turn = Turn(ts="2026-11-21T22:05:00+09:00", sender="abc", kind="question", intent="ask_fee")
    first = store.add(turn)
    second = store.add(turn)
    assert second == first + 1
    with sqlite3.connect(db) as other:  # another process: a staff command
        assert other.execute("SELECT count(*) FROM turns").fetchone()[0] == 2
    assert [t.id for t in ReviewStore(db).turns()] == [first, second]
    db.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    store.add(turn)
    assert db.is_file() and len(store.turns()) == 1
