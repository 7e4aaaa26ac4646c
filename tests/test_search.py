"""Identifying the procedure a citizen means (procedures/search.py) and the generated NLU data."""
from pathlib import Path

import pytest

from procedures.__main__ import nlu_yaml
from procedures.catalogue import load_catalogue
from procedures.search import ProcedureIndex

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def index():
    return ProcedureIndex(load_catalogue("morioka"))


def test_generated_nlu_data_matches_the_catalogue():
    """data/nlu/generated/procedures.yml must be regenerated whenever aliases change."""
    generated = (ROOT / "data" / "nlu" / "generated" / "procedures.yml").read_text(encoding="utf-8")
    assert generated == nlu_yaml("morioka"), "python -m procedures export-nlu を実行してください"


@pytest.mark.parametrize("text, expected", [
    ("住民票の写しをコンビニで取れますか", "juminhyo_copy"),
    ("ｼﾞｭｳﾐﾝﾋｮｳがほしい", "juminhyo_copy"),        # half-width katakana
    ("じゅうみんひょうがほしい", "juminhyo_copy"),   # kana only
    ("住民票記載事項証明書が必要です", "juminhyo_kisai_jiko"),  # the longer alias wins
])
def test_aliases_in_the_text_identify_one_procedure(index, text, expected):
    assert index.identify(text).procedure.id == expected


def test_entity_value_that_is_an_id_is_used(index):
    assert index.identify("これください", ["inkan_certificate"]).procedure.id == "inkan_certificate"


def test_moving_asks_back_which_kind_of_move(index):
    found = index.identify("引っ越すときの手続きは？", predicted=("moving", 0.9))
    assert found.procedure is None and found.topic == "引越し"
    assert found.choices == ("moving_away", "moving_here", "moving_inside")


def test_life_event_lists_tagged_procedures_by_deadline(index):
    found = index.identify("子どもが生まれました", predicted=("birth", 0.9))
    assert found.life_event == "birth" and found.topic == "出産"
    procs = index.event_procedures("birth")
    assert "birth_registration" in [p.id for p in procs]
    assert all("birth" in p.life_events for p in procs)
    days = [p.deadline_days for p in procs if p.deadline_days is not None]
    assert days == sorted(days), "earliest deadline first"
    assert [p.deadline_days for p in procs][len(days):] == [None] * (len(procs) - len(days)), "no deadline last"


def test_topic_offers_up_to_three_candidates(index):
    found = index.identify("国保のことで聞きたい", predicted=("kokuho", 0.9))
    assert 1 < len(found.candidates) <= 3 and found.topic == "国民健康保険"


def test_selector_choice_is_taken_when_the_text_names_no_procedure(index):
    found = index.identify("財布ごと落としてしまって止めたい", predicted=("mynumber_card_lost", 0.9))
    assert found.procedure.id == "mynumber_card_lost" and found.how == "selector"


def test_weak_selector_guess_does_not_override_the_conversation(index):
    found = index.identify("手数料は？", current="juminhyo_copy", predicted=("dog_registration", 0.3))
    assert found.procedure.id == "juminhyo_copy" and found.how == "context"


def test_nothing_fits(index):
    found = index.identify("明日の天気はどうですか")
    assert found.procedure is None and not found.candidates
