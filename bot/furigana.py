"""Furigana (ふりがな / ルビ): readings over the kanji of a text, from SudachiPy.

The web chat page shows them as ``<ruby>`` when the citizen turns the ふりがな toggle on, for
children, foreign residents and anyone unsure of a kanji reading.

Algorithm: the text is split into morphemes by :func:`bot.nlu.japanese.tokenize` (SudachiPy split
mode C, core dictionary). A morpheme that contains kanji gets its Sudachi reading (読み, katakana,
converted to hiragana). The okurigana are then aligned so that the reading stands over the kanji
only: the surface 「引っ越し」 becomes the pattern ``^(.+?)っ(.+?)し$``, which, matched against the
reading 「ひっこし」, gives 引→ひ and 越→こ. When the pattern does not match (irregular readings),
the whole morpheme gets the whole reading. Symbols, numbers and kana get no reading.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Dict, List, Tuple

from bot.nlu.japanese import tokenize

#: Kanji (CJK unified ideographs incl. extension A and compatibility ideographs) and the
#: iteration / abbreviation marks written within kanji words: 々 〆 ヶ ヵ.
_KANJI = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006\u30f6\u30f5"
_KANJI_RE = re.compile(f"[{_KANJI}]")
_KANA_RE = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc]")


def to_hiragana(text: str) -> str:
    """Katakana ァ..ヶ → hiragana ぁ..ゖ; everything else unchanged (ー stays ー)."""
    return "".join(chr(ord(ch) - 0x60) if 0x30A1 <= ord(ch) <= 0x30F6 else ch for ch in text)


def has_kanji(text: str) -> bool:
    """True when ``text`` contains at least one kanji (or 々 〆 ヶ)."""
    return _KANJI_RE.search(text) is not None


def _runs(surface: str) -> List[Tuple[str, bool]]:
    """Split ``surface`` into runs of kana (True) and of anything else (False)."""
    runs: List[Tuple[str, bool]] = []
    for ch in surface:
        kana = bool(_KANA_RE.match(ch)) and ch not in "ヶヵ"
        if runs and runs[-1][1] == kana:
            runs[-1] = (runs[-1][0] + ch, kana)
        else:
            runs.append((ch, kana))
    return runs


def align(surface: str, reading: str) -> List[Dict[str, str]]:
    """Put ``reading`` (hiragana) over the kanji of one word ``surface``.

    >>> align("引っ越し", "ひっこし")
    [{'text': '引', 'reading': 'ひ'}, {'text': 'っ'}, {'text': '越', 'reading': 'こ'}, {'text': 'し'}]
    >>> align("住民票", "じゅうみんひょう")
    [{'text': '住民票', 'reading': 'じゅうみんひょう'}]

    Returns:
        Segments ``{"text"}`` or ``{"text", "reading"}`` whose texts joined give ``surface``.
        A reading is given only to runs that contain kanji; when the kana of the surface cannot
        be matched in the reading, the whole surface gets the whole reading.
    """
    runs = _runs(surface)
    pattern = "".join(re.escape(to_hiragana(text)) if kana else "(.+?)" for text, kana in runs)
    match = re.fullmatch(pattern, reading)
    if match is None:
        return [{"text": surface, "reading": reading}]
    segments: List[Dict[str, str]] = []
    groups = iter(match.groups())
    for text, kana in runs:
        if kana:
            segments.append({"text": text})
            continue
        run_reading = next(groups)
        segments.append({"text": text, "reading": run_reading} if has_kanji(text) else {"text": text})
    return segments


def _merge_plain(segments: List[Dict[str, str]]) -> List[Dict[str, str]]:
    """Join neighbouring segments without a reading."""
    merged: List[Dict[str, str]] = []
    for seg in segments:
        if not seg["text"]:
            continue
        if merged and "reading" not in seg and "reading" not in merged[-1]:
            merged[-1] = {"text": merged[-1]["text"] + seg["text"]}
        else:
            merged.append(dict(seg))
    return merged


@lru_cache(maxsize=2048)
def _segments_cached(text: str) -> Tuple[Tuple[Tuple[str, str], ...], ...]:
    segments: List[Dict[str, str]] = []
    position = 0
    for m in tokenize(text):
        if m.start > position:  # white space skipped by the tokenizer
            segments.append({"text": text[position:m.start]})
        surface = text[m.start:m.end]
        reading = to_hiragana(m.reading)
        if has_kanji(surface) and reading and not has_kanji(reading) and reading != to_hiragana(surface):
            segments.extend(align(surface, reading))
        else:
            segments.append({"text": surface})
        position = m.end
    if position < len(text):
        segments.append({"text": text[position:]})
    return tuple(tuple(seg.items()) for seg in _merge_plain(segments))


def furigana(text: str) -> List[Dict[str, str]]:
    """Segments of ``text`` with readings over its kanji (cached; about 0.1 ms per short text).

    >>> furigana("住民票を取る")
    [{'text': '住民票', 'reading': 'じゅうみんひょう'}, {'text': 'を'}, {'text': '取', 'reading': 'と'}, {'text': 'る'}]

    Args:
        text: any text (the bot's message); may contain white space and line breaks.
    Returns:
        ``[{"text"} | {"text", "reading"}]``: joined, the texts give back ``text`` exactly;
        ``reading`` (hiragana) is present only on segments that contain kanji.
    """
    return [dict(seg) for seg in _segments_cached(text)]
