"""Staff tools: spreadsheet → NLU data, duplicate/conflict check, NLU cross-validation report.

What matters to staff: a row they wrote ends up as the right intent; a mistake is reported with
the spreadsheet row and nothing half-written; conflicting examples are caught before training;
the evaluation report shows the numbers and charts they need.
"""
import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.staff.examples import convert_examples, import_examples
from bot.staff.nlu_data import (
    Example,
    TargetResolver,
    check_examples,
    normalize_example,
    read_examples,
    write_nlu_file,
)
from bot.staff.nlu_report import confusion_matrix, write_report
from bot.staff.sheet import SheetError, read_sheet

ROOT = Path(__file__).resolve().parents[1]
CV = ROOT / "tests" / "data" / "staff" / "cv"
PNG = b"\x89PNG\r\n\x1a\n"


def write_csv(path, rows, header=("意図", "例文", "担当者")):
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def resolver():
    return TargetResolver.from_repo(ROOT, "morioka")


def test_resolver_accepts_intent_procedure_id_name_alias_and_life_event(resolver):
    assert resolver.resolve("ask_fee") == ("ask_fee", "")
    assert resolver.resolve("juminhyo_copy")[0] == "ask_procedure/juminhyo_copy"
    assert resolver.resolve("ask_procedure/juminhyo_copy")[0] == "ask_procedure/juminhyo_copy"
    assert resolver.resolve("住民票")[0] == "ask_procedure/juminhyo_copy"
    assert resolver.resolve("ｼﾞｭｳﾐﾝﾋｮｳ")[0] == "ask_procedure/juminhyo_copy"  # half-width kana alias
    assert resolver.resolve("Juminhyo_copy")[0] == "ask_procedure/juminhyo_copy"  # Excel capitalised it
    assert resolver.resolve("出産")[0] == "ask_procedure/birth"
    intent, reason = resolver.resolve("ask_procedure")
    assert intent is None and "手続き id" in reason
    intent, reason = resolver.resolve("住民票のようなもの")
    assert intent is None and "見つかりません" in reason


def test_spreadsheet_rows_become_examples_and_errors_name_the_row(tmp_path, resolver):
    sheet = write_csv(tmp_path / "例文.csv", [
        ["住民票", "住民票って土曜でも取れる方法ある？", "佐藤"],
        ["ask_fee", "なんぼかかるの", ""],
        ["", "", ""],  # blank row: skipped
        ["存在しない手続き", "何かの手続き", ""],
        ["juminhyo_copy", "", ""],
    ])
    result = convert_examples(sheet, resolver, existing=[])
    assert result.examples == [("ask_procedure/juminhyo_copy", "住民票って土曜でも取れる方法ある？"), ("ask_fee", "なんぼかかるの")]
    assert len(result.errors) == 2
    assert result.errors[0].startswith("例文.csv 5行目") and "存在しない手続き" in result.errors[0]
    assert result.errors[1].startswith("例文.csv 6行目") and "例文が空" in result.errors[1]


def test_conflict_with_existing_data_is_an_error_and_same_intent_is_skipped(tmp_path, resolver):
    existing = [Example("ask_procedure/inkan_certificate", "印鑑証明がほしい", "data/nlu/inkan.yml:5")]
    sheet = write_csv(tmp_path / "例文.csv", [
        ["住民票", "印鑑証明が　ほしい！", ""],  # same text up to spaces/punctuation, other procedure
        ["inkan_certificate", "印鑑証明がほしい", ""],  # already there, same intent
    ])
    result = convert_examples(sheet, resolver, existing)
    assert result.examples == []
    assert len(result.errors) == 1 and "2行目" in result.errors[0]
    assert "data/nlu/inkan.yml:5" in result.errors[0] and "ask_procedure/inkan_certificate" in result.errors[0]
    assert len(result.notices) == 1 and "3行目" in result.notices[0]


def test_conflict_between_two_rows_of_the_spreadsheet(tmp_path, resolver):
    sheet = write_csv(tmp_path / "例文.csv", [["住民票", "証明書がほしい", ""], ["印鑑証明", "証明書がほしい", ""]])
    result = convert_examples(sheet, resolver, existing=[])
    assert len(result.errors) == 1 and "3行目" in result.errors[0] and "例文.csv 2行目" in result.errors[0]


def test_import_writes_rasa_file_only_without_errors(tmp_path):
    out = tmp_path / "staff_examples.yml"
    good = write_csv(tmp_path / "good.csv", [["住民票", "住民票を土曜日に受け取りたいんだけど", ""],
                                             ["ask_hours", "窓口って夜何時までやってる", ""]])
    result = import_examples(good, ROOT, "morioka", out=out)
    assert result.errors == []
    examples = read_examples([out])
    assert [(e.intent, e.text) for e in examples] == [("ask_procedure/juminhyo_copy", "住民票を土曜日に受け取りたいんだけど"),
                                                     ("ask_hours", "窓口って夜何時までやってる")]
    before = out.read_text(encoding="utf-8")
    bad = write_csv(tmp_path / "bad.csv", [["nonexistent_intent", "なにか", ""]])
    assert import_examples(bad, ROOT, "morioka", out=out).errors
    assert out.read_text(encoding="utf-8") == before, "nothing is written when a row has an error"


def test_xlsx_with_full_width_headers(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["意 図", "例文", "メモ"])
    sheet.append(["ask_fee", "お金かかりますか", "窓口で多い質問"])
    workbook.save(tmp_path / "例文.xlsx")
    rows = read_sheet(tmp_path / "例文.xlsx", {"intent": ["意図"], "text": ["例文"]}, required=("intent", "text"))
    assert [(r.number, r.get("intent"), r.get("text")) for r in rows] == [(2, "ask_fee", "お金かかりますか")]


def test_missing_column_and_wrong_encoding_are_explained(tmp_path):
    no_column = write_csv(tmp_path / "a.csv", [["x", "y"]], header=("意図", "文"))
    with pytest.raises(SheetError, match="例文"):
        read_sheet(no_column, {"intent": ["意図"], "text": ["例文"]}, required=("intent", "text"))
    shift_jis = tmp_path / "b.csv"
    shift_jis.write_bytes("意図,例文\nask_fee,いくら\n".encode("shift_jis"))
    with pytest.raises(SheetError, match="UTF-8"):
        read_sheet(shift_jis, {"intent": ["意図"], "text": ["例文"]}, required=("intent", "text"))


def test_check_finds_conflicts_across_files_and_duplicates(tmp_path):
    write_nlu_file(tmp_path / "a.yml", [("ask_procedure/juminhyo_copy", "[住民票](procedure)をコンビニで取りたい"),
                                        ("greet", "こんにちは"), ("greet", "こんにちは！")], "test")
    write_nlu_file(tmp_path / "b.yml", [("ask_procedure/koseki_certificate", "住民票をｺﾝﾋﾞﾆで取りたい")], "test")
    findings = check_examples(read_examples([tmp_path / "a.yml", tmp_path / "b.yml"]))
    errors = [f for f in findings if f.level == "error"]
    warnings = [f for f in findings if f.level == "warning"]
    assert len(errors) == 1
    assert "a.yml:6" in errors[0].message and "b.yml:6" in errors[0].message
    assert "ask_procedure/juminhyo_copy" in errors[0].message and "ask_procedure/koseki_certificate" in errors[0].message
    assert len(warnings) == 1 and "greet" in warnings[0].message


def test_catalogue_examples_count_for_conflicts_not_for_duplicates(tmp_path):
    """Each procedure's aliases are generated as its examples: a staff example 「住民票」 under the same
    procedure is expected (no warning), one under another intent is a conflict naming both files."""
    generated = ROOT / "data" / "nlu" / "generated" / "procedures.yml"
    write_nlu_file(tmp_path / "a.yml", [("ask_procedure/juminhyo_copy", "住民票"),
                                        ("ask_procedure/koseki_certificate", "婚姻届")], "test")
    examples = read_examples([generated, tmp_path / "a.yml"], ROOT)
    assert any(e.generated and e.text == "住民票" and e.intent == "ask_procedure/juminhyo_copy" for e in examples)
    findings = check_examples(examples)
    assert [f.level for f in findings] == ["error"]
    assert "婚姻届" in findings[0].message and "data/nlu/generated/procedures.yml" in findings[0].message
    assert "ask_procedure/marriage_registration" in findings[0].message


def test_normalization_folds_width_kana_markup_and_punctuation():
    assert normalize_example("[ｼﾞｭｳﾐﾝﾋｮｳ](procedure) 取りたい！") == normalize_example("じゅうみんひょう取りたい")
    assert normalize_example("住民票") != normalize_example("印鑑証明")


def test_staff_check_command_fails_on_conflict(tmp_path, monkeypatch):
    from bot import cli
    from bot.config import get_settings

    (tmp_path / "data" / "nlu").mkdir(parents=True)
    write_nlu_file(tmp_path / "data/nlu/x.yml", [("ask_fee", "いくら"), ("ask_hours", "いくら")], "test")
    monkeypatch.setenv("REPO_ROOT", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["staff", "check"])
    finally:
        monkeypatch.delenv("REPO_ROOT")
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "矛盾" in result.output and "data/nlu/x.yml:6" in result.output and "data/nlu/x.yml:9" in result.output


def test_confusion_matrix_agrees_with_rasa_report():
    report = json.loads((CV / "intent_report.json").read_text(encoding="utf-8"))
    errors = json.loads((CV / "intent_errors.json").read_text(encoding="utf-8"))
    labels, matrix = confusion_matrix(report, errors, "intent", "intent_prediction")
    total = sum(map(sum, matrix))
    correct = sum(matrix[i][i] for i in range(len(labels)))
    assert total == sum(report[l]["support"] for l in report if isinstance(report[l], dict) and "support" in report[l]
                        and l not in ("macro avg", "weighted avg", "micro avg"))
    assert correct / total == pytest.approx(report["accuracy"])
    i, j = labels.index("out_of_scope"), labels.index("ask_procedure")
    assert matrix[i][j] == 27  # out_of_scope examples the model took for procedure questions


def test_nlu_report_writes_html_with_charts_and_history(tmp_path):
    cv = tmp_path / "cv"
    shutil.copytree(CV, cv)
    errors = json.loads((cv / "intent_errors.json").read_text(encoding="utf-8"))
    errors[0]["text"] = "<script>alert(1)</script>"
    (cv / "intent_errors.json").write_text(json.dumps(errors, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "report"
    summary = write_report(cv, out, names={"juminhyo_copy": "住民票の写しの交付"})
    assert summary["intent_accuracy"] == pytest.approx(0.865, abs=1e-3)
    assert summary["selector_accuracy"] == pytest.approx(0.805, abs=1e-3)
    for png in ("intent_confusion.png", "intent_f1.png", "procedure_f1.png"):
        assert (out / png).read_bytes().startswith(PNG)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'src="intent_confusion.png"' in page and 'src="procedure_f1.png"' in page
    assert "0.865" in page and "<script>" not in page and "&lt;script&gt;" in page
    write_report(cv, out)
    with (out / "history.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_nlu_report_command_prints_where_the_report_is(tmp_path):
    from bot import cli

    result = CliRunner().invoke(cli.app, ["staff", "nlu-report", str(CV), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    assert f"NLU レポート: {tmp_path / 'ev' / 'index.html'}" in result.output
    missing = CliRunner().invoke(cli.app, ["staff", "nlu-report", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "make evaluate" in missing.output


def test_imported_examples_mark_procedure_and_channel_words_like_the_hand_written_data():
    """Staff rows carry no markup; unmarked procedure names would teach the entity extractor that
    死亡届 is not an entity, so the converter marks catalogue aliases and channel words."""
    from bot.config import DEFAULT_REPO_ROOT
    from bot.staff.nlu_data import annotate_entities, entity_surfaces

    surfaces = entity_surfaces(DEFAULT_REPO_ROOT)
    assert annotate_entities("死亡届はどこに出せばいいですか", surfaces) == "[死亡届](procedure)はどこに出せばいいですか"
    assert (annotate_entities("住民票の除票をコンビニで取りたい", surfaces)
            == "[住民票の除票](procedure)を[コンビニ](channel)で取りたい")  # longest alias wins
    assert annotate_entities("役所で何をすればいいですか", surfaces) == "役所で何をすればいいですか"
    assert annotate_entities("[転入届](procedure)を出したい", surfaces) == "[転入届](procedure)を出したい"
