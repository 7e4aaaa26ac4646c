"""Japanese tokenization and normalization with SudachiPy (形態素解析・表記ゆれの正規化).

One place for how the project reads Japanese: the Rasa tokenizer (bot/nlu/sudachi_tokenizer.py) and
the catalogue search (procedures/search.py) both call it, so 引越し/引っ越し/ひっこし and full-width/
half-width variants meet in the same way everywhere.

Algorithm sources: SudachiPy (WorksApplications) split mode C and its 正規化表記 (normalized_form),
which unifies spelling variants (e.g. 引越し → 引っ越し, ｺﾝﾋﾞﾆ → コンビニ); Unicode NFKC for
width folding.
"""
from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import List

_SPLIT_MODES = ("A", "B", "C")
_local = threading.local()


@dataclass(frozen=True)
class Morpheme:
    """One Sudachi morpheme (形態素) of the original text.

    Attributes:
        surface: the text exactly as written.
        start, end: character offsets into the original text (end exclusive).
        normalized: Sudachi's normalized form (正規化表記), used as the lemma.
        reading: katakana reading (読み), e.g. 住民票 → ジュウミンヒョウ.
        pos: first level of the part of speech (品詞), e.g. 名詞, 動詞.
    """

    surface: str
    start: int
    end: int
    normalized: str
    reading: str
    pos: str


@lru_cache(maxsize=1)
def _dictionary():
    from sudachipy import Dictionary

    return Dictionary(dict="core")


def _tokenizer(mode: str):
    """A Sudachi tokenizer for this thread (Sudachi tokenizers are not thread-safe)."""
    if mode not in _SPLIT_MODES:
        raise ValueError(f"unknown Sudachi split mode {mode!r}; use one of {_SPLIT_MODES}")
    cache = getattr(_local, "tokenizers", None)
    if cache is None:
        cache = _local.tokenizers = {}
    if mode not in cache:
        from sudachipy import SplitMode

        cache[mode] = _dictionary().create(getattr(SplitMode, mode))
    return cache[mode]


def tokenize(text: str, mode: str = "C") -> List[Morpheme]:
    """Split ``text`` into morphemes, skipping white space.

    Args:
        text: any Unicode text (empty gives []).
        mode: Sudachi split mode, "A" (shortest), "B" or "C" (longest units; the default).
    Returns:
        Morphemes in order, with offsets into ``text`` as given (not normalized).
    Raises:
        ValueError: unknown split mode.
    """
    if not text:
        return []
    result: List[Morpheme] = []
    for m in _tokenizer(mode).tokenize(text):
        surface = m.surface()
        if not surface.strip():
            continue
        result.append(
            Morpheme(
                surface=surface,
                start=m.begin(),
                end=m.end(),
                normalized=m.normalized_form(),
                reading=m.reading_form(),
                pos=m.part_of_speech()[0],
            )
        )
    return result


def fold(text: str) -> str:
    """Fold width, case and kana for matching: NFKC, lower case, katakana → hiragana, no spaces.

    >>> fold("ｼﾞｭｳﾐﾝﾋｮｳ Ｂ")
    'じゅうみんひょうb'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    out = []
    for ch in text:
        code = ord(ch)
        if 0x30A1 <= code <= 0x30F6:  # katakana ァ..ヶ → hiragana ぁ..ゖ
            ch = chr(code - 0x60)
        if not ch.isspace():
            out.append(ch)
    return "".join(out)


def reading(text: str) -> str:
    """Hiragana reading of ``text`` from Sudachi (e.g. 印鑑証明 → いんかんしょうめい), folded."""
    return fold("".join(m.reading for m in tokenize(text)))


def lemmas(text: str) -> List[str]:
    """Sudachi normalized forms of the content words of ``text`` (no particles, auxiliaries, symbols)."""
    skip = {"助詞", "助動詞", "補助記号", "空白", "記号"}
    return [fold(m.normalized) for m in tokenize(text) if m.pos not in skip]
