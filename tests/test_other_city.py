"""Another city adopts the bot by adding a data folder, not by changing code."""
import shutil
from pathlib import Path

import yaml

from procedures.answer import Templates
from procedures.catalogue import load_catalogue
from procedures.reply import reply_to
from procedures.search import ProcedureIndex

ROOT = Path(__file__).resolve().parents[1]


def test_a_new_city_folder_is_answered_with_its_own_profile(tmp_path):
    folder = tmp_path / "hanamaki"
    folder.mkdir()
    profile = yaml.safe_load((ROOT / "procedures/cities/morioka/city.yml").read_text(encoding="utf-8"))
    profile.update(id="hanamaki", name="花巻市", code="03205", phone="0198-24-2111",
                   website="https://www.city.hanamaki.iwate.jp/", contact_text="花巻市役所（0198-24-2111）")
    (folder / "city.yml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    shutil.copy(ROOT / "procedures/cities/morioka/shomeisho.yml", folder / "shomeisho.yml")

    catalogue = load_catalogue("hanamaki", tmp_path)
    templates = Templates.from_domain_file(ROOT / "domain.yml")
    index = ProcedureIndex(catalogue)

    answer = reply_to(index, templates, catalogue.city, "ask_procedure", "住民票が欲しい")
    assert answer.procedure == "juminhyo_copy"
    assert "花巻市の公式ページ" in answer.messages[0]["text"]

    none = reply_to(index, templates, catalogue.city, "nlu_fallback", "ふるさと納税の返礼品")
    assert "花巻市役所（0198-24-2111）" in none.messages[0]["text"]
    assert "盛岡" not in none.messages[0]["text"]
