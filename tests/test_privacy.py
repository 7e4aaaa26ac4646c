"""Personal data protection (個人情報の保護): bot/privacy.py redaction and pseudonymous ids.

What must go: phone numbers (fixed, mobile, +81), e-mail addresses, マイナンバー (12 digits, with or
without separators), postal codes, street addresses, long account/card numbers. What must stay:
the numbers citizens use to ask about procedures (部数, 人数, dates, fees, times), or NLU breaks.
The gateway side (redacted before rasa, nothing raw in logs) is in test_bad_input.py; the real
tracker store is checked in test_faults.py.
"""

from __future__ import annotations

import pytest

from bot.privacy import log_id, pseudonymize, redact


@pytest.mark.parametrize(
    "text, expected",
    [
        # phone numbers (固定・携帯・国際表記)
        ("電話は019-651-4111です", "電話は[電話番号]です"),
        ("(019)651-4111まで", "[電話番号]まで"),
        ("0196514111に電話", "[電話番号]に電話"),
        ("携帯090-1234-5678", "携帯[電話番号]"),
        ("09012345678です", "[電話番号]です"),
        ("080 1234 5678", "[電話番号]"),
        ("+81 90-1234-5678", "[電話番号]"),
        ("+81-19-651-4111", "[電話番号]"),
        ("０９０−１２３４−５６７８", "[電話番号]"),  # full-width digits (NFKC)
        ("０９０ー１２３４ー５６７８", "[電話番号]"),  # 「ー」 typed for a dash
        ("019‐651‐4111", "[電話番号]"),
        # e-mail
        ("taro.yamada+city@example.co.jp に送って", "[メール] に送って"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "[メール]"),
        # マイナンバー (個人番号, 12 digits)
        ("番号は123456789012です", "番号は[マイナンバー]です"),
        ("1234 5678 9012", "[マイナンバー]"),
        ("1234-5678-9012", "[マイナンバー]"),
        ("１２３４　５６７８　９０１２", "[マイナンバー]"),
        # postal codes and addresses
        ("〒020-8530 盛岡市内丸12-2", "[郵便番号] 盛岡市内丸12-2"),  # 2-part numbers kept (ranges)
        ("〒020-8530 盛岡市上田1-2-3", "[郵便番号] 盛岡市上田[住所]"),
        ("020-0023に住んでいます", "[郵便番号]に住んでいます"),
        ("中央通1丁目2番3号に住んでいます", "中央通[住所]に住んでいます"),
        ("盛岡市内丸12番2号", "盛岡市内丸[住所]"),
        ("本町2-3-4", "本町[住所]"),
        ("大通3丁目", "大通[住所]"),
        ("上田123番地の4", "上田[住所]"),
        # long numbers (口座・保険証・カード)
        ("口座番号は98765432です", "口座番号は[番号]です"),
        ("カード4111111111111111", "カード[番号]"),
    ],
)
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "住民票を2通ください",
        "住民票を２通",  # becomes 2通 (NFKC) but stays a count
        "令和6年4月1日に引っ越しました",
        "2024年4月1日",
        "2024-04-01に転入",
        "2024/4/1",
        "家族3人で転入します",
        "手数料は300円ですか",
        "10,000円",
        "平日8:30-17:15",
        "12月29日から1月3日まで",
        "14日以内に届け出",
        "昭和50年1月1日生まれ",
        "子ども2人と妻1人",
        "窓口は3番です",
        "第1子",
        "1人目",
        "65歳以上",
        "R6年度の課税証明",
        "国保の加入は何日以内？",
        "3-4日かかりますか",
        "スーパーで買い物",
    ],
)
def test_non_personal_numbers_are_kept(text: str) -> None:
    import unicodedata

    assert redact(text) == unicodedata.normalize("NFKC", text)


def test_several_kinds_in_one_message() -> None:
    text = "住民票を2通。連絡先 090-1234-5678 / a@b.jp、マイナンバー1234 5678 9012、住所は中央通1丁目2番3号"
    assert redact(text) == "住民票を2通。連絡先 [電話番号] / [メール]、マイナンバー[マイナンバー]、住所は中央通[住所]"


def test_empty_and_none_like_input() -> None:
    assert redact("") == ""
    assert redact("住民票") == "住民票"


def test_redaction_is_idempotent() -> None:
    once = redact("電話090-1234-5678、〒020-8530")
    assert redact(once) == once


def test_pseudonymize_is_stable_keyed_and_hides_the_raw_id() -> None:
    raw = "U4af4980629abcdef0123456789abcdef"
    first = pseudonymize(raw, "key-1", prefix="line-")
    assert first == pseudonymize(raw, "key-1", prefix="line-")
    assert first != pseudonymize(raw, "key-2", prefix="line-")
    assert first.startswith("line-") and raw not in first and len(first) == len("line-") + 32
    with pytest.raises(ValueError):
        pseudonymize(raw, "")


def test_log_id_is_short_and_not_the_id() -> None:
    assert len(log_id("web-123")) == 12 and "web-123" not in log_id("web-123")
    assert log_id("web-123") == log_id("web-123") != log_id("web-124")
