"""Rasa graph component: trims predicted entity spans to the names the training data marks.

DIETClassifier often stretches a ``procedure`` entity over the words around the name:
「[粗大ごみを出したい]」, 「[児童手当の]」, 「[マイナンバーカードの申請]」, while the training data marks
「[粗大ごみ](procedure)」 and the catalogue's names and aliases (data/nlu/generated/procedures.yml).
A stretched value matches no alias, so EntitySynonymMapper cannot map it to a catalogue id and the
action has to guess. This component, placed after DIETClassifier and before EntitySynonymMapper,
snaps each predicted span of the configured entity types (default ``procedure``) to a surface seen
in training (see :func:`snap_span`), and drops a span whose text the training data never marks
but leaves unmarked in several examples (「申請」「登録」「変更」: see :func:`is_known_non_entity`).
The entities keep their extractor (DIETClassifier) and get this component's name in ``processors``,
as rasa's EntitySynonymMapper does (the model for this component's train/persist/load).

Measured with ``make evaluate`` (5-fold cross-validation, fixed folds): see docs/architecture.md.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

#: Particles (助詞) that never end or start a procedure name: stripped from an unknown span's ends.
PARTICLES = frozenset("のをにはがでとへもや")
#: An unknown span of at most this many hiragana only (「ど」「た」「いん」) is dropped.
MAX_DROPPED_KANA = 2
SURFACES_FILE = "surfaces.json"
#: Default of config ``min_unmarked``: examples in which a text must appear unmarked to be dropped.
MIN_UNMARKED = 3


def _is_hiragana(text: str) -> bool:
    return all("\u3041" <= ch <= "\u309f" for ch in text)


def snap_span(text: str, start: int, end: int, surfaces: FrozenSet[str]) -> Optional[Tuple[int, int]]:
    """The span (start, end) of ``text`` snapped to a known surface, or None to drop it.

    Args:
        text: the whole message.
        start, end: character offsets of the predicted entity (end exclusive).
        surfaces: entity texts marked in the training data (2 characters or more are used).
    Returns:
        In this order: the span itself when its text is a known surface; else the longest known
        surface that starts the span (「[児童手当]の」), else the longest that ends it
        (「母の[介護認定]」); else the span without particles at its ends; None when what is left
        is at most :data:`MAX_DROPPED_KANA` hiragana (「ど」 of 「んだども」), which no name is.
    """
    frag = text[start:end]
    if frag in surfaces:
        return start, end
    for size in range(len(frag) - 1, 1, -1):
        if frag[:size] in surfaces:
            return start, start + size
    for size in range(len(frag) - 1, 1, -1):
        if frag[-size:] in surfaces:
            return end - size, end
    while end - start > 1 and text[end - 1] in PARTICLES:
        end -= 1
    while end - start > 1 and text[start] in PARTICLES:
        start += 1
    left = text[start:end]
    if len(left) <= MAX_DROPPED_KANA and _is_hiragana(left) and left not in surfaces:
        return None
    return start, end


def training_surfaces(examples: Iterable[Message], entity_types: Iterable[str]) -> FrozenSet[str]:
    """Texts of the entities of ``entity_types`` marked in ``examples`` (2 characters or more)."""
    types = set(entity_types)
    out = set()
    for example in examples:
        text = example.get(TEXT) or ""
        for entity in example.get(ENTITIES) or []:
            if entity.get("entity") in types and "start" in entity and "end" in entity:
                surface = text[entity["start"]:entity["end"]]
                if len(surface) >= 2:
                    out.add(surface)
    return frozenset(out)


def unmarked_texts(examples: Iterable[Message]) -> List[str]:
    """Each example's text with every marked entity (of any type) blanked out by NUL characters."""
    out = []
    for example in examples:
        chars = list(example.get(TEXT) or "")
        for entity in example.get(ENTITIES) or []:
            for i in range(entity.get("start", 0), min(entity.get("end", 0), len(chars))):
                chars[i] = "\0"
        if chars:
            out.append("".join(chars))
    return out


def is_known_non_entity(value: str, surfaces: FrozenSet[str], unmarked: Sequence[str],
                        min_unmarked: int = MIN_UNMARKED) -> bool:
    """Whether ``value`` is never marked in training but appears unmarked in >= ``min_unmarked`` examples.

    ``unmarked`` is :func:`unmarked_texts` of the training examples. 「申請」 in 「[児童手当](procedure)の
    申請」 is such a text; 「国保」, marked in some examples and left unmarked in others, is not.
    """
    if value in surfaces or min_unmarked <= 0:
        return False
    seen = 0
    for text in unmarked:
        if value in text:
            seen += 1
            if seen >= min_unmarked:
                return True
    return False


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class EntitySpanSnapper(GraphComponent):
    """Snaps predicted entity spans to surfaces marked in the training data (see module docstring).

    Config: ``entities`` (list of entity types, default ``["procedure"]``); ``min_unmarked``
    (default :data:`MIN_UNMARKED`; 0 keeps every span) for :func:`is_known_non_entity`.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """{"entities": ["procedure"], "min_unmarked": 3}."""
        return {"entities": ["procedure"], "min_unmarked": MIN_UNMARKED}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 surfaces: Iterable[str] = (), unmarked: Iterable[str] = ()) -> None:
        """Keeps the config, the storage to persist to, the known surfaces and the unmarked texts."""
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.surfaces: FrozenSet[str] = frozenset(surfaces)
        self.unmarked: List[str] = list(unmarked)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "EntitySpanSnapper":
        """A component with no surfaces yet (train fills them)."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Collects the surfaces and unmarked texts and persists them (JSON {"surfaces", "unmarked"})."""
        examples = [m for m in training_data.training_examples if m.get(TEXT)]
        self.surfaces = training_surfaces(examples, self._config["entities"])
        self.unmarked = unmarked_texts(examples)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / SURFACES_FILE).write_text(json.dumps(
                {"surfaces": sorted(self.surfaces), "unmarked": self.unmarked}, ensure_ascii=False),
                encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "EntitySpanSnapper":
        """The trained component; with no surfaces (spans left as predicted) if none were stored."""
        stored: Dict[str, List[str]] = {}
        try:
            with model_storage.read_from(resource) as directory:
                stored = json.loads((directory / SURFACES_FILE).read_text(encoding="utf-8"))
        except (ValueError, OSError):
            logger.warning("EntitySpanSnapper: no stored surfaces; entity spans are left as predicted")
        return cls(config, model_storage, resource, stored.get("surfaces", ()), stored.get("unmarked", ()))

    def process(self, messages: List[Message]) -> List[Message]:
        """Snaps the spans of the configured entity types in each message (others untouched)."""
        types = set(self._config["entities"])
        for message in messages:
            text = message.get(TEXT) or ""
            entities = []
            for entity in message.get(ENTITIES) or []:
                if entity.get("entity") not in types or not self.surfaces or "start" not in entity:
                    entities.append(entity)
                    continue
                span = snap_span(text, entity["start"], entity["end"], self.surfaces)
                if span is None or is_known_non_entity(text[span[0]:span[1]], self.surfaces, self.unmarked,
                                                       self._config.get("min_unmarked", MIN_UNMARKED)):
                    continue
                if span != (entity["start"], entity["end"]):
                    entity = {**entity, "start": span[0], "end": span[1], "value": text[span[0]:span[1]],
                              "processors": [*entity.get("processors", []), self.__class__.__name__]}
                entities.append(entity)
            message.set(ENTITIES, entities, add_to_output=True)
        return messages
