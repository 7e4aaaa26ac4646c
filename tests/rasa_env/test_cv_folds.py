"""``bot.nlu.cv_folds``: ``make evaluate`` tests every example in the same fold on every run, and
adding examples does not move the others."""
from pathlib import Path

import rasa.nlu.test
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.cv_folds import install_stable_folds, is_generated, stable_folds
from bot.nlu.japanese import fold

ROOT = Path(__file__).resolve().parents[2]


def _test_sets(data, folds: int = 5):
    return [sorted(ex.get("text") for ex in test.intent_examples) for _, test in stable_folds(folds, data)]


def test_every_example_is_tested_once_in_the_same_fold_every_run():
    data = load_data(str(ROOT / "data" / "nlu"))
    hand = [ex for ex in data.intent_examples if not is_generated(ex)]
    first = _test_sets(data)
    assert _test_sets(data) == first
    assert sorted(t for f in first for t in f) == sorted(ex.get("text") for ex in hand)
    assert min(len(f) for f in first) > 0.15 * len(hand)  # roughly 1/5 each
    for train, test in stable_folds(5, data):
        assert len([ex for ex in train.intent_examples if not is_generated(ex)]) + len(test.intent_examples) == len(hand)
        assert train.entity_synonyms == data.entity_synonyms and train.responses == data.responses


def test_catalogue_examples_are_trained_on_but_never_tested():
    """The names and aliases generated from the catalogue are training material, not citizens'
    phrasings: in every fold's training part unless equal to a tested text, never in a test part."""
    data = load_data(str(ROOT / "data" / "nlu"))
    generated = [ex for ex in data.intent_examples if is_generated(ex)]
    assert len(generated) > 500, "export-nlu writes each procedure's name and aliases as examples"
    assert {ex.get("text") for ex in generated} >= {"住民票", "婚姻届"}
    left_out = 0
    for train, test in stable_folds(5, data):
        assert not any(is_generated(ex) for ex in test.intent_examples)
        tested = {fold(ex.get("text")) for ex in test.intent_examples}
        trained = [ex for ex in train.intent_examples if is_generated(ex)]
        assert not any(fold(ex.get("text")) in tested for ex in trained)
        left_out += len(generated) - len(trained)
    # Some hand-written examples equal an alias (「住民票」 alone); each is left out of one fold only.
    assert 0 < left_out < len(generated)


def test_added_examples_leave_the_others_in_their_folds():
    data = load_data(str(ROOT / "data" / "nlu"))
    added = [Message(data={"text": f"住民票を{n}通ください", "intent": "ask_procedure",
                           "intent_response_key": "ask_procedure/juminhyo_copy"}) for n in range(1, 17)]
    bigger = TrainingData(training_examples=data.training_examples + added, responses=data.responses)
    new_texts = {m.get("text") for m in added}
    before = _test_sets(data)
    after = [[t for t in fold if t not in new_texts] for fold in _test_sets(bigger)]
    assert after == before


def test_rasa_cross_validation_uses_the_stable_folds(monkeypatch):
    monkeypatch.setattr(rasa.nlu.test, "generate_folds", rasa.nlu.test.generate_folds)
    install_stable_folds()
    assert rasa.nlu.test.generate_folds is stable_folds
