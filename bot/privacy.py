"""Personal data protection (個人情報の保護): redaction of citizens' text and pseudonymous ids.

Citizens' messages may hold personal data. Before a text reaches a log, the review store or the
tracker store, :func:`redact` replaces what looks like personal data with a placeholder; raw user ids
(LINE user ids, web sender ids) are replaced by :func:`pseudonymize` / :func:`log_id`.

Patterns (all matched on the NFKC-normalized text, so full-width digits count too):
- マイナンバー (個人番号): 12 digits, optionally grouped 4-4-4 (番号法 第2条第5項).
- phone numbers: Japanese fixed and mobile numbers, 10-11 digits starting with 0, optionally
  with hyphens/spaces/parentheses, or +81 (総務省「電気通信番号計画」).
- e-mail addresses.
- postal codes: 〒 or NNN-NNNN.
- street addresses: a 丁目/番地/番/号 block with digits (e.g. 「中央通1丁目2番3号」「本町2-3-4」).
- long digit runs (8+ digits: card, account, insurance numbers).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import List, Tuple

#: (placeholder, pattern) in the order they are applied (most specific first).
PATTERNS: List[Tuple[str, "re.Pattern[str]"]] = [
    ("[メール]", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ("[マイナンバー]", re.compile(r"(?<!\d)\d{4}[- ]?\d{4}[- ]?\d{4}(?!\d)")),
    ("[郵便番号]", re.compile(r"〒\s*\d{3}-?\d{4}|(?<![\d)-])\d{3}-\d{4}(?![\d-])")),
    ("[電話番号]", re.compile(
        r"(?<!\d)(?:\+81[- ]?\(?0?\d{1,4}\)?|0\d{1,4}|\(0\d{1,4}\))[- ()]?\d{1,4}[- )]?\d{3,4}(?!\d)")),
    ("[住所]", re.compile(
        r"\d+\s*丁目(?:\s*\d+\s*(?:番地?|-))?(?:\s*\d+\s*号?)?"
        r"|\d+\s*番地(?:\s*の?\s*\d+)?(?:\s*\d+\s*号)?"
        r"|\d+\s*番\s*\d+\s*号"
        r"|(?<![\d-])\d{1,3}-\d{1,4}-\d{1,4}(?![\d-])")),
    ("[番号]", re.compile(r"(?<!\d)\d{8,}(?!\d)")),
]

#: Dash-like characters between two digits (hyphen, minus, dashes, katakana long vowel mark).
_DIGIT_DASH = re.compile(r"(?<=\d)[\u2010-\u2015\u2212\u30fc\uff70](?=\d)")


def redact(text: str) -> str:
    """Replace personal data in ``text`` by placeholders such as ``[電話番号]``.

    Args:
        text: any citizen text (str; may be empty).
    Returns:
        The NFKC-normalized text with every match of :data:`PATTERNS` replaced; dash-like
        characters between digits (「−」「ー」「‐」…, as typed on Japanese keyboards) count as
        ``-``. Text without personal data comes back only normalized (full-width ASCII →
        half-width; those dashes → ``-``).
    Example:
        >>> redact("電話は019-651-4111、番号は1234 5678 9012です")
        '電話は[電話番号]、番号は[マイナンバー]です'
    """
    out = _DIGIT_DASH.sub("-", unicodedata.normalize("NFKC", text or ""))
    for placeholder, pattern in PATTERNS:
        out = pattern.sub(placeholder, out)
    return out


def pseudonymize(raw_id: str, key: str, prefix: str = "") -> str:
    """Stable pseudonymous id for a raw user id (e.g. a LINE user id), safe to store and log.

    Args:
        raw_id: the raw id (never stored).
        key: secret key (HMAC-SHA256); without it the id cannot be recomputed from a guess.
        prefix: prepended as is, e.g. ``"line-"`` so channels stay apart.
    Returns:
        ``prefix`` + the first 32 hex characters of HMAC-SHA256(key, raw_id), e.g. ``line-3f2a…``
        (matches the gateway's sender_id pattern ``[A-Za-z0-9_.:-]``).
    Raises:
        ValueError: ``key`` is empty.
    """
    if not key:
        raise ValueError("pseudonymize needs a non-empty key")
    digest = hmac.new(key.encode("utf-8"), raw_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:32]}"


def log_id(sender_id: str) -> str:
    """Short id for log lines: first 12 hex characters of sha256(sender_id)."""
    return hashlib.sha256(sender_id.encode("utf-8")).hexdigest()[:12]
