"""Procedure entity spans snapped to the names marked in training (bot/nlu/entity_spans.py, config.yml):
a stretched span such as 「粗大ごみを出したい」 must become 「粗大ごみ」 so that the synonym mapper finds the
catalogue id, and words such as 「申請」 must not be taken for a procedure name."""
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.entity_spans import EntitySpanSnapper, is_known_non_entity, snap_span, unmarked_texts

SURFACES = frozenset({"粗大ごみ", "児童手当", "介護認定", "マイナンバーカード", "国保"})


def snapped(text, value):
    start = text.index(value)
    span = snap_span(text, start, start + len(value), SURFACES)
    return None if span is None else text[span[0]:span[1]]


def test_known_name_kept():
    assert snapped("国保に入りたい", "国保") == "国保"


def test_stretched_span_trimmed_to_the_name_it_starts_with():
    assert snapped("粗大ごみを出したい", "粗大ごみを出したい") == "粗大ごみ"
    assert snapped("マイナンバーカードの申請", "マイナンバーカードの申請") == "マイナンバーカード"


def test_stretched_span_trimmed_to_the_name_it_ends_with():
    assert snapped("母の介護認定を代わりに申請したい", "の介護認定") == "介護認定"


def test_unknown_name_loses_only_particles():
    assert snapped("特別児童扶養手当を申請したい", "特別児童扶養手当を") == "特別児童扶養手当"


def test_lone_kana_dropped():
    assert snapped("保育園さ入れてえんだども", "ど") is None


def example(text, *marked):
    entities = []
    for value, entity in marked:
        start = text.index(value)
        entities.append({"start": start, "end": start + len(value), "value": value, "entity": entity})
    return Message(data={TEXT: text, ENTITIES: entities, "intent": "x"})


TRAINING = [
    example("児童手当の申請をしたい", ("児童手当", "procedure")),
    example("介護認定の申請", ("介護認定", "procedure")),
    example("粗大ごみの申請はどこ", ("粗大ごみ", "procedure")),
    example("国保について質問です"),
    example("国保に入りたい", ("国保", "procedure")),
    example("コンビニで申請できる手続き", ("コンビニ", "channel")),
]


def test_word_left_unmarked_in_training_is_no_name():
    surfaces = frozenset({"児童手当", "介護認定", "粗大ごみ", "国保"})
    unmarked = unmarked_texts(TRAINING)
    assert is_known_non_entity("申請", surfaces, unmarked, 3)
    assert not is_known_non_entity("申請", surfaces, unmarked, 5)
    assert not is_known_non_entity("国保", surfaces, unmarked, 1)  # marked elsewhere: a name
    assert not is_known_non_entity("コンビニ", surfaces, unmarked, 1)  # marked (as channel): blanked


def test_component_trains_persists_and_snaps(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("snapper")
    config = {**EntitySpanSnapper.get_default_config()}
    EntitySpanSnapper.create(config, storage, resource, None).train(TrainingData(TRAINING))
    loaded = EntitySpanSnapper.load(config, storage, resource, None)

    text = "粗大ごみを出したい。申請はどこ？コンビニで"
    found = [
        {"start": 0, "end": 9, "value": text[0:9], "entity": "procedure", "extractor": "DIETClassifier"},
        {"start": 10, "end": 12, "value": "申請", "entity": "procedure", "extractor": "DIETClassifier"},
        {"start": 16, "end": 20, "value": "コンビニ", "entity": "channel", "extractor": "DIETClassifier"},
    ]
    message = Message(data={TEXT: text, ENTITIES: found})
    loaded.process([message])
    entities = message.get(ENTITIES)
    assert [(e["entity"], e["value"]) for e in entities] == [("procedure", "粗大ごみ"), ("channel", "コンビニ")]
    assert entities[0]["end"] == 4
    assert entities[0]["extractor"] == "DIETClassifier"
    assert entities[0]["processors"] == ["EntitySpanSnapper"]


def test_component_without_stored_surfaces_leaves_spans(tmp_path):
    storage = LocalModelStorage(tmp_path)
    snapper = EntitySpanSnapper.load(EntitySpanSnapper.get_default_config(), storage, Resource("none"), None)
    message = Message(data={TEXT: "粗大ごみを出したい", ENTITIES: [
        {"start": 0, "end": 9, "value": "粗大ごみを出したい", "entity": "procedure"}]})
    snapper.process([message])
    assert message.get(ENTITIES)[0]["value"] == "粗大ごみを出したい"
