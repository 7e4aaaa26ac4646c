"""Opening hours at a given moment (procedures/hours.py) and the 「今できること」 line / card fields
(procedures/answer.py). The clock is frozen by passing ``now`` explicitly (JST)."""
import datetime as dt
from pathlib import Path

import pytest

from procedures.answer import Templates, compose, to_card
from procedures.catalogue import Channel, Procedure, Schedule, default_catalogue
from procedures.hours import JST, is_holiday, parse_window, status

ROOT = Path(__file__).resolve().parents[1]


def jst(*args):
    return dt.datetime(*args, tzinfo=JST)


@pytest.fixture(scope="module")
def catalogue():
    return default_catalogue("morioka")


@pytest.fixture(scope="module")
def schedules(catalogue):
    return catalogue.city.schedules


@pytest.fixture(scope="module")
def templates():
    return Templates.from_domain_file(ROOT / "domain.yml")


# --- procedures/hours.py ---------------------------------------------------------------------------

def test_saturday_night_counter_closed_until_monday_store_open_until_23_online_always(schedules):
    now = jst(2026, 11, 14, 22, 0)  # 土曜 22:00
    counter = status(schedules["counter"], now)
    assert not counter.open_now and counter.closes_at is None
    assert counter.next_open == jst(2026, 11, 16, 8, 30)  # 月曜 8:30
    assert counter.next_open.isoformat() == "2026-11-16T08:30:00+09:00"
    store = status(schedules["convenience_store"], now)
    assert store.open_now and store.closes_at == jst(2026, 11, 14, 23, 0)
    online = status(schedules["always"], now)
    assert online.open_now and online.always
    assert online.next_open is None and online.closes_at is None


def test_saturday_before_a_holiday_monday_counter_opens_tuesday(schedules):
    counter = status(schedules["counter"], jst(2026, 11, 21, 22, 0))
    assert counter.next_open == jst(2026, 11, 24, 8, 30)


def test_weekday_10_counter_open_until_1715(schedules):
    counter = status(schedules["counter"], jst(2026, 11, 20, 10, 0))  # 金曜
    assert counter.open_now
    assert counter.closes_at == jst(2026, 11, 20, 17, 15)
    # while open, next_open is the opening after this one (the card shows null instead)
    assert counter.next_open == jst(2026, 11, 24, 8, 30)


def test_weekday_18_counter_closed_until_next_morning_store_open(schedules):
    now = jst(2026, 11, 19, 18, 0)  # 木曜
    counter = status(schedules["counter"], now)
    assert not counter.open_now and counter.next_open == jst(2026, 11, 20, 8, 30)
    store = status(schedules["convenience_store"], now)
    assert store.open_now and store.closes_at == jst(2026, 11, 19, 23, 0)


def test_counter_boundaries_are_half_open(schedules):
    assert status(schedules["counter"], jst(2026, 11, 19, 8, 30)).open_now
    assert not status(schedules["counter"], jst(2026, 11, 19, 8, 29, 59)).open_now
    assert not status(schedules["counter"], jst(2026, 11, 19, 17, 15)).open_now
    assert status(schedules["counter"], jst(2026, 11, 19, 17, 14, 59)).open_now


def test_national_holiday_closes_counter_but_not_convenience_store(schedules):
    now = jst(2026, 11, 23, 10, 0)  # 勤労感謝の日（月）
    assert is_holiday(now.date())
    counter = status(schedules["counter"], now)
    assert not counter.open_now and counter.next_open == jst(2026, 11, 24, 8, 30)
    store = status(schedules["convenience_store"], now)
    assert store.open_now and store.closes_at == jst(2026, 11, 23, 23, 0)


@pytest.mark.parametrize(
    "day, opens",
    [
        (dt.date(2026, 5, 6), jst(2026, 5, 7, 8, 30)),  # 振替休日（憲法記念日が日曜）
        (dt.date(2026, 9, 22), jst(2026, 9, 24, 8, 30)),  # 国民の休日、23日は秋分の日
        (dt.date(2027, 3, 22), jst(2027, 3, 23, 8, 30)),  # 振替休日（春分の日が日曜）
    ],
)
def test_substitute_and_citizens_holidays_close_the_counter(schedules, day, opens):
    assert is_holiday(day)
    counter = status(schedules["counter"], dt.datetime.combine(day, dt.time(10), tzinfo=JST))
    assert not counter.open_now and counter.next_open == opens


@pytest.mark.parametrize("now", [jst(2026, 12, 31, 12, 0), jst(2027, 1, 3, 12, 0), jst(2026, 12, 29, 7, 0)])
def test_new_year_break_closes_counter_and_convenience_store(schedules, now):
    counter = status(schedules["counter"], now)
    store = status(schedules["convenience_store"], now)
    assert not counter.open_now and not store.open_now
    assert counter.next_open == jst(2027, 1, 4, 8, 30)
    assert store.next_open == jst(2027, 1, 4, 6, 30)
    assert status(schedules["always"], now).open_now


def test_last_day_before_new_year_break(schedules):
    store = status(schedules["convenience_store"], jst(2026, 12, 28, 22, 0))
    assert store.open_now and store.closes_at == jst(2026, 12, 28, 23, 0)
    assert store.next_open == jst(2027, 1, 4, 6, 30)


@pytest.mark.parametrize(
    "now, open_now, next_open",
    [
        (jst(2026, 11, 19, 23, 0), False, jst(2026, 11, 20, 6, 30)),
        (jst(2026, 11, 20, 0, 0), False, jst(2026, 11, 20, 6, 30)),
        (jst(2026, 11, 20, 6, 29), False, jst(2026, 11, 20, 6, 30)),
        (jst(2026, 11, 20, 6, 30), True, jst(2026, 11, 21, 6, 30)),
        (jst(2026, 11, 20, 22, 59), True, jst(2026, 11, 21, 6, 30)),
    ],
)
def test_convenience_store_gap_23_to_630(schedules, now, open_now, next_open):
    store = status(schedules["convenience_store"], now)
    assert store.open_now is open_now
    assert store.next_open == next_open
    assert (store.closes_at is not None) is open_now


def test_other_time_zones_are_converted_to_jst(schedules):
    utc = dt.datetime(2026, 11, 14, 13, 0, tzinfo=dt.timezone.utc)  # = 土曜 22:00 JST
    counter = status(schedules["counter"], utc)
    assert counter.next_open.isoformat() == "2026-11-16T08:30:00+09:00"
    assert status(schedules["convenience_store"], utc).open_now


def test_naive_datetime_is_rejected(schedules):
    with pytest.raises(ValueError, match="aware"):
        status(schedules["counter"], dt.datetime(2026, 11, 14, 22, 0))


def test_nothing_opens_within_14_days_gives_no_next_open():
    closed = Schedule(name="x", text="休止中", weekly={})
    st = status(closed, jst(2026, 11, 20, 10, 0))
    assert st == type(st)(open_now=False, closes_at=None, next_open=None)


def test_overnight_and_midnight_windows():
    night = Schedule(name="night", text="夜間", weekly={"fri": "22:00-02:00"})
    st = status(night, jst(2026, 11, 21, 1, 0))  # 土曜 1:00, window started Friday
    assert st.open_now and st.closes_at == jst(2026, 11, 21, 2, 0)
    late = Schedule(name="late", text="深夜まで", weekly={"mon": "18:00-24:00", "tue": "00:00-03:00"})
    st = status(late, jst(2026, 11, 16, 20, 0))
    assert st.open_now and st.closes_at == jst(2026, 11, 17, 3, 0)  # touching windows are merged
    assert parse_window("08:30-17:15") == (510, 525)


@pytest.mark.parametrize("weekly", [{"mon": "25:00-26:00"}, {"mon": "8:30"}, {"monday": "08:30-17:15"}])
def test_malformed_weekly_raises(weekly):
    with pytest.raises(ValueError):
        status(Schedule(name="bad", text="x", weekly=weekly), jst(2026, 11, 16, 10, 0))


# --- answer text and card ------------------------------------------------------------------------

def issue_procedure(schedules) -> Procedure:
    """The issue's example: online (24h), convenience store, counter."""
    return Procedure(
        id="example", name="例の証明書", aliases=("例",), category="証明書", area="証明書",
        channels={
            "online": Channel(id="online", available=True, hours=schedules["always"]),
            "convenience_store": Channel(id="convenience_store", available=True, hours=schedules["convenience_store"]),
            "counter": Channel(id="counter", available=True, hours=schedules["counter"]),
        },
        documents=(), department="市民課", phone="019-000-0000", source_url="https://example.jp/",
        checked=dt.date(2026, 11, 1),
    )


def test_saturday_night_line_says_what_can_be_done_now(catalogue, schedules, templates):
    answer = compose(issue_procedure(schedules), catalogue.city, templates, now=jst(2026, 11, 14, 22, 0))
    assert (
        "【現在 11月14日(土) 22:00】オンライン（電子申請）は24時間いつでも利用できます。"
        "コンビニは23:00まで利用できます。窓口は受付時間外です（次は11月16日(月) 8:30から）。"
    ) in answer.text.splitlines()
    channels = answer.card["procedure"]["channels"]
    assert channels["counter"]["open_now"] is False
    assert channels["counter"]["next_open"] == "2026-11-16T08:30:00+09:00"
    assert channels["convenience_store"]["open_now"] is True and channels["convenience_store"]["next_open"] is None
    assert channels["convenience_store"]["closes_at"] == "2026-11-14T23:00:00+09:00"
    assert channels["online"]["open_now"] is True and channels["online"]["next_open"] is None


def test_new_year_line_names_the_reopening(catalogue, schedules, templates):
    answer = compose(issue_procedure(schedules), catalogue.city, templates, aspect="hours", now=jst(2026, 12, 31, 12, 0))
    assert "コンビニは受付時間外です（次は1月4日(月) 6:30から）。" in answer.text
    assert "窓口は受付時間外です（次は1月4日(月) 8:30から）。" in answer.text
    card = answer.card["procedure"]["channels"]
    assert card["convenience_store"]["next_open"] == "2027-01-04T06:30:00+09:00"
    assert card["counter"]["next_open"] == "2027-01-04T08:30:00+09:00"


def test_weekday_morning_counter_open_until(catalogue, schedules, templates):
    answer = compose(issue_procedure(schedules), catalogue.city, templates, aspect="hours", now=jst(2026, 11, 20, 10, 0))
    assert "窓口は17:15まで利用できます。" in answer.text
    counter = answer.card["procedure"]["channels"]["counter"]
    assert counter["open_now"] is True and counter["next_open"] is None


def test_without_now_the_answer_and_card_are_unchanged(catalogue, templates):
    proc = catalogue.get("juminhyo_copy")
    answer = compose(proc, catalogue.city, templates)
    assert "【現在" not in answer.text
    assert answer.card == to_card(proc)
    for ch in answer.card["procedure"]["channels"].values():
        assert "open_now" not in ch and "next_open" not in ch
        assert {"available", "how", "url", "hours", "fee_yen", "fee_note", "requirements", "note"} <= set(ch)


def test_time_line_only_for_overview_and_hours(catalogue, templates):
    proc = catalogue.get("juminhyo_copy")
    now = jst(2026, 11, 14, 22, 0)
    assert "【現在" not in compose(proc, catalogue.city, templates, aspect="fee", now=now).text
    fee_card = compose(proc, catalogue.city, templates, aspect="fee", now=now).card
    assert fee_card["procedure"]["channels"]["counter"]["open_now"] is False


def test_unavailable_channel_or_no_hours_gives_null(catalogue, templates):
    now = jst(2026, 11, 14, 22, 0)
    card = to_card(catalogue.get("juminhyo_copy"), now=now)["procedure"]["channels"]
    assert card["online"]["available"] is False
    assert card["online"]["open_now"] is None and card["online"]["next_open"] is None
    tax = to_card(catalogue.get("city_tax_payment"), now=now)["procedure"]["channels"]
    assert tax["convenience_store"]["open_now"] is None  # no hours in the catalogue


def test_naive_now_is_rejected_by_compose(catalogue, templates):
    with pytest.raises(ValueError):
        compose(catalogue.get("juminhyo_copy"), catalogue.city, templates, now=dt.datetime(2026, 11, 14, 22, 0))
