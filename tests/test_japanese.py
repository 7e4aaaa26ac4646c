"""Japanese tokenization and normalization (bot/nlu/japanese.py): what the NLU and search rely on."""
from bot.nlu.japanese import fold, lemmas, reading, tokenize


def test_tokens_have_offsets_into_the_original_text():
    text = "住民票を　ｺﾝﾋﾞﾆで取りたい"
    tokens = tokenize(text)
    assert [t.surface for t in tokens][:2] == ["住民票", "を"]
    for t in tokens:
        assert text[t.start:t.end] == t.surface
    assert all(t.surface.strip() for t in tokens), "white space is not a token"


def test_spelling_variants_share_the_normalized_form():
    forms = {tokenize(w)[0].normalized for w in ["引越し", "引っ越し"]}
    assert forms == {"引っ越し"}
    assert tokenize("ｺﾝﾋﾞﾆ")[0].normalized == "コンビニ"
    # kana-only verb forms normalize to the kanji lemma
    assert "引っ越す" in {t.normalized for t in tokenize("ひっこす")}


def test_fold_unifies_width_case_and_kana():
    assert fold("ｼﾞｭｳﾐﾝﾋｮｳ") == fold("じゅうみんひょう") == "じゅうみんひょう"
    assert fold("ＡＢＣ １２") == "abc12"


def test_reading_gives_hiragana_for_kanji():
    assert reading("印鑑証明") == "いんかんしょうめい"
    assert reading("住民票") == "じゅうみんひょう"


def test_lemmas_drop_particles():
    assert lemmas("住民票を取りたい") == ["住民票", "取る"]


def test_empty_and_unknown_mode():
    assert tokenize("") == []
    import pytest

    with pytest.raises(ValueError):
        tokenize("住民票", mode="Z")
