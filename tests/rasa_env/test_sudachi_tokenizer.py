"""The Rasa tokenizer graph component (bot/nlu/sudachi_tokenizer.py) inside Rasa's own data types."""
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.sudachi_tokenizer import SudachiTokenizer


def make(mode="C"):
    return SudachiTokenizer({**SudachiTokenizer.get_default_config(), "split_mode": mode})


def test_tokens_offsets_and_normalized_lemmas():
    text = "引越しで住民票をｺﾝﾋﾞﾆで取りたい"
    tokens = make().tokenize(Message(data={TEXT: text}), TEXT)
    assert [t.text for t in tokens][:4] == ["引越し", "で", "住民票", "を"]
    for t in tokens:
        assert text[t.start:t.end] == t.text
    lemmas = {t.text: t.lemma for t in tokens}
    assert lemmas["引越し"] == "引っ越し"
    assert lemmas["ｺﾝﾋﾞﾆ"] == "コンビニ"
    assert tokens[0].get("pos") == "名詞"


def test_split_mode_a_is_finer_than_c():
    text = "印鑑登録証明書"
    assert len(make("A").tokenize(Message(data={TEXT: text}), TEXT)) > len(make("C").tokenize(Message(data={TEXT: text}), TEXT))


def test_training_data_is_tokenized_with_entities_aligned():
    msg = Message(data={TEXT: "住民票の写しが欲しい", "intent": "ask_procedure",
                        "entities": [{"start": 0, "end": 6, "value": "住民票の写し", "entity": "procedure"}]})
    make().process_training_data(TrainingData([msg]))
    tokens = msg.get("text_tokens")
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    assert 0 in starts and 6 in ends, "entity boundaries fall on token boundaries"
