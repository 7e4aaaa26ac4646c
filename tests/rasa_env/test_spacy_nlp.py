"""bot/nlu/spacy_nlp.py: leaving GiNZA's pipes out must not change a single feature.

config.yml runs ja_ginza without tok2vec/ner/morphologizer/...; if any of them influenced what the
tokenizer or SpacyFeaturizer read, the model would silently differ from the one measured by
cross-validation. This compares, on every training example, what rasa's own SpacyNLP gives.
"""
from pathlib import Path

import numpy as np
import pytest
import yaml
from rasa.nlu.utils.spacy_utils import SpacyNLP as RasaSpacyNLP
from rasa.shared.nlu.training_data.loading import load_data

from bot.nlu.spacy_nlp import SpacyNLP

ROOT = Path(__file__).resolve().parents[2]


def configured_spacy() -> dict:
    """The SpacyNLP entry of config.yml."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    return next(c for c in config["pipeline"] if c["name"].endswith("SpacyNLP"))


@pytest.fixture(scope="module")
def models():
    entry = configured_spacy()
    ours = SpacyNLP.create({k: v for k, v in entry.items() if k != "name"}, None, None, None).provide().model
    rasa = RasaSpacyNLP.create({"model": entry["model"]}, None, None, None).provide().model
    return ours, rasa


def test_config_uses_the_light_component():
    entry = configured_spacy()
    assert entry["name"] == "bot.nlu.spacy_nlp.SpacyNLP"
    assert {"tok2vec", "ner", "morphologizer"} <= set(entry["exclude"])


def test_excluded_pipes_do_not_run(models):
    ours, rasa = models
    assert ours.pipe_names == []
    assert "ner" in rasa.pipe_names


def test_same_tokens_tags_norms_and_vectors_on_all_training_examples(models):
    ours, rasa = models
    texts = [m.get("text") for m in load_data(str(ROOT / "data" / "nlu")).training_examples]
    assert len(texts) > 1000
    differing = []
    for text in texts:
        a, b = ours(text), rasa(text)
        same = (
            [(t.text, t.idx, t.norm_, t.tag_) for t in a] == [(t.text, t.idx, t.norm_, t.tag_) for t in b]
            and np.array_equal(a.vector, b.vector)
            and all(np.array_equal(x.vector, y.vector) for x, y in zip(a, b))
        )
        if not same:
            differing.append(text)
    assert differing == []


def test_unknown_pipe_name_is_an_error():
    with pytest.raises(ValueError, match="nerr"):
        SpacyNLP.create({"model": "ja_ginza", "exclude": ["nerr"]}, None, None, None)


def test_default_behaves_like_rasa():
    model = SpacyNLP.create({"model": "ja_ginza"}, None, None, None).provide()
    assert "parser" not in model.model.pipe_names and "ner" in model.model.pipe_names
    assert model.fingerprint() == "ja_ginza"
