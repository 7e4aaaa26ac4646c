"""Catalogue validation (procedures/catalogue.py): the real catalogue is valid, broken files are
reported with file, entry and field, and aliases cannot point to two procedures."""
import shutil
from pathlib import Path

import pytest
import yaml

from procedures.catalogue import CHANNELS, CatalogueError, load_catalogue, validate_city, validate_file

REAL = Path(__file__).resolve().parents[1] / "procedures" / "cities"


def test_real_catalogue_is_valid_and_complete():
    catalogue = load_catalogue("morioka")
    assert len(catalogue) >= 30
    assert catalogue.city.name == "盛岡市"
    for p in catalogue:
        assert p.source_url.startswith("https://"), p.id
        assert p.checked is None or p.checked.year >= 2024, p.id
        assert p.available_channels(), f"{p.id} has no available channel"
        for ch in p.channels.values():
            assert ch.id in CHANNELS
            assert ch.fee_yen is None or ch.fee_yen >= 0


def test_available_channels_spare_a_visit_first():
    p = load_catalogue("morioka").get("juminhyo_copy")
    order = [c.id for c in p.available_channels()]
    assert order.index("convenience_store") < order.index("counter")


@pytest.fixture
def city_copy(tmp_path):
    """A copy of the morioka folder with only city.yml and shomeisho.yml, to break on purpose."""
    dest = tmp_path / "testcity"
    dest.mkdir()
    shutil.copy(REAL / "morioka" / "city.yml", dest / "city.yml")
    shutil.copy(REAL / "morioka" / "shomeisho.yml", dest / "shomeisho.yml")
    return tmp_path, dest


def _edit(path, change):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_copy_is_valid(city_copy):
    root, _ = city_copy
    assert validate_city("testcity", root) == []


def test_missing_field_names_file_entry_and_field(city_copy):
    root, folder = city_copy
    _edit(folder / "shomeisho.yml", lambda d: d["procedures"][0].pop("source_url"))
    problems = validate_city("testcity", root)
    assert len(problems) == 1
    p = problems[0]
    assert p.file == "shomeisho.yml" and p.entry == "juminhyo_copy"
    assert "source_url" in p.message
    with pytest.raises(CatalogueError) as exc:
        load_catalogue("testcity", root)
    assert "shomeisho.yml" in str(exc.value) and "juminhyo_copy" in str(exc.value)


def test_bad_values_are_reported_with_their_field(city_copy):
    root, folder = city_copy

    def break_it(d):
        p = d["procedures"][0]
        p["channels"]["counter"]["fee_yen"] = -300
        p["source_url"] = "http://not-https.example"
        p["checked"] = "yesterday"

    _edit(folder / "shomeisho.yml", break_it)
    fields = {p.field for p in validate_city("testcity", root)}
    assert {"channels.counter.fee_yen", "source_url", "checked"} <= fields


def test_unknown_schedule_name(city_copy):
    root, folder = city_copy
    _edit(folder / "shomeisho.yml", lambda d: d["procedures"][0]["channels"]["counter"].update(hours="midnight"))
    problems = validate_city("testcity", root)
    assert [p.field for p in problems] == ["channels.counter.hours"]
    assert "midnight" in problems[0].message


def test_alias_naming_two_procedures_is_rejected(city_copy):
    root, folder = city_copy

    def dup(d):
        other = dict(d["procedures"][0], id="juminhyo_other", name="別の手続き", aliases=["ジュウミンヒョウ"])
        d["procedures"].append(other)

    _edit(folder / "shomeisho.yml", dup)
    problems = validate_city("testcity", root)
    assert any(p.entry == "juminhyo_other" and p.field == "aliases" and "juminhyo_copy" in p.message for p in problems)


def test_alias_with_entity_markup_brackets_is_rejected(city_copy):
    """Aliases become NLU examples ``[alias](procedure)``: ASCII brackets would break the markup."""
    root, folder = city_copy
    _edit(folder / "shomeisho.yml", lambda d: d["procedures"][0]["aliases"].append("住民票(写し)"))
    problems = validate_city("testcity", root)
    assert [(p.entry, p.field) for p in problems] == [("juminhyo_copy", "aliases")]
    assert "住民票(写し)" in problems[0].message and "全角" in problems[0].message


def test_yaml_syntax_error_is_reported(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("area: x\nprocedures: [\n", encoding="utf-8")
    problems = validate_file(bad)
    assert problems and problems[0].file == "bad.yml" and "YAML" in problems[0].message
