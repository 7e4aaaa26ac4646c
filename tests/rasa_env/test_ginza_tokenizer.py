"""The spaCy/GiNZA tokenizer (bot/nlu/ginza_tokenizer.py, config.yml): lemmas are Sudachi
normalized forms, so spelling variants meet as with the plain Sudachi tokenizer."""
import pytest
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.ginza_tokenizer import GinzaTokenizer


@pytest.fixture(scope="module")
def nlp():
    spacy = pytest.importorskip("spacy")
    return spacy.load("ja_ginza")


def tokens(nlp, text):
    message = Message(data={TEXT: text, "text_spacy_doc": nlp(text)})
    return GinzaTokenizer(GinzaTokenizer.get_default_config()).tokenize(message, TEXT)


def test_offsets_and_normalized_lemmas(nlp):
    text = "引越しで住民票をｺﾝﾋﾞﾆで取りたい"
    toks = tokens(nlp, text)
    for t in toks:
        assert text[t.start:t.end] == t.text
    lemmas = {t.text: t.lemma for t in toks}
    assert lemmas["引越し"] == "引っ越し"
    assert lemmas["ｺﾝﾋﾞﾆ"] == "コンビニ"


def test_variants_meet(nlp):
    assert tokens(nlp, "引越し")[0].lemma == tokens(nlp, "引っ越し")[0].lemma
