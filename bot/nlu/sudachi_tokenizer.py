"""Rasa graph component: Japanese tokenizer on SudachiPy (形態素解析によるトークナイザ).

Use in config.yml as ``- name: bot.nlu.sudachi_tokenizer.SudachiTokenizer`` (PYTHONPATH must hold the
repository root; the Makefile sets it). Each token's lemma is Sudachi's normalized form (正規化表記),
so CountVectorsFeaturizer (use_lemma: true) sees 引越し and 引っ越し as one word.
Source of the component API: rasa/nlu/tokenizers/tokenizer.py and spacy_tokenizer.py (Rasa 3.6).
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.nlu import japanese

POS_TAG_KEY = "pos"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class SudachiTokenizer(Tokenizer):
    """Tokenizes Japanese text with SudachiPy (split mode C by default).

    Config keys (besides Rasa's tokenizer keys): ``split_mode``: "A", "B" or "C".
    Tokens carry: text (surface), start/end offsets into the message text, lemma = normalized form,
    data["pos"] = first-level part of speech (for LexicalSyntacticFeaturizer).
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Rasa tokenizer defaults plus ``split_mode`` (see class docstring)."""
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            "split_mode": "C",
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component needs."""
        return ["sudachipy"]

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        """Tokens of ``message.get(attribute)``; [] for empty text."""
        text = message.get(attribute) or ""
        mode = self._config.get("split_mode", "C")
        tokens = [
            Token(m.surface, m.start, end=m.end, lemma=m.normalized, data={POS_TAG_KEY: m.pos})
            for m in japanese.tokenize(text, mode)
        ]
        return self._apply_token_pattern(tokens)
