"""Rasa graph component: spaCy/GiNZA tokenizer whose lemmas are Sudachi normalized forms.

GiNZA (ja_ginza) runs SudachiPy inside spaCy; its ``lemma_`` is the dictionary form (辞書形) and its
``norm_`` the normalized form (正規化表記). Rasa's SpacyTokenizer uses ``lemma_``; this subclass
uses ``norm_`` instead so that spelling variants meet as in SudachiTokenizer. Needs SpacyNLP with
model ja_ginza earlier in the pipeline. Source: ginza docs (token.norm_), rasa SpacyTokenizer.
"""
from __future__ import annotations

from typing import List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.spacy_tokenizer import POS_TAG_KEY, SpacyTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class GinzaTokenizer(SpacyTokenizer):
    """SpacyTokenizer with lemma = GiNZA ``norm_`` (Sudachi normalized form)."""

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        """Tokens of the spaCy doc of ``attribute``; [] when there is no doc."""
        doc = self._get_doc(message, attribute)
        if not doc:
            return []
        tokens = [
            Token(t.text, t.idx, lemma=t.norm_, data={POS_TAG_KEY: self._tag_of_token(t)})
            for t in doc
            if t.text and t.text.strip()
        ]
        return self._apply_token_pattern(tokens)
