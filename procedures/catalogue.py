"""Load and validate the procedures catalogue (手続きカタログ) and the municipality profile.

Layout: ``procedures/cities/<city>/city.yml`` (市区町村プロフィール) and one YAML file per area
(分野) beside it, each validated against ``procedures/schema.yml`` (JSON Schema draft 7).
Plain Python + PyYAML + jsonschema, so both virtual environments (rasa and the action server) can
import it.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
CITIES_DIR = PACKAGE_DIR / "cities"
SCHEMA_PATH = PACKAGE_DIR / "schema.yml"
CITY_FILE = "city.yml"
LIFE_EVENTS_FILE = PACKAGE_DIR / "life_events.yml"
#: ``metadata: {source: ...}`` of the NLU examples generated from the catalogue (names and aliases,
#: ``python -m procedures export-nlu``); cross-validation trains on them and never tests them.
CATALOGUE_SOURCE = "catalogue"

#: Channel ids in the order that spares a visit first (「行かない・待たない・書かない」).
CHANNELS: Tuple[str, ...] = ("online", "convenience_store", "mail", "counter")


class CatalogueError(Exception):
    """The catalogue cannot be used; ``problems`` lists every problem found.

    Each problem is a :class:`Problem` naming the file, the entry (procedure id or index) and the
    field, so that city staff can find it.
    """

    def __init__(self, problems: List["Problem"]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Problem:
    """One validation problem: ``file``, ``entry`` (procedure id, or #index), ``field`` path, ``message``."""

    file: str
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}"
        if self.entry:
            where += f" 手続き {self.entry}"
        if self.field:
            where += f" 項目 {self.field}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Schedule:
    """Opening hours of a channel (受付時間), JST.

    ``text`` is shown to citizens; ``weekly`` maps mon..sun to "HH:MM-HH:MM"; ``always`` means 24/7.
    """

    name: str
    text: str
    always: bool = False
    weekly: Mapping[str, str] = field(default_factory=dict)
    closed_on_holidays: bool = False
    closed_new_year: bool = False


@dataclass(frozen=True)
class Channel:
    """One way to carry out a procedure: online (電子申請), convenience_store (コンビニ交付), mail (郵送), counter (窓口).

    ``fee_yen`` is in yen (0 = free, None = not known/not fixed).
    """

    id: str
    available: bool
    how: str = ""
    url: Optional[str] = None
    hours: Optional[Schedule] = None
    fee_yen: Optional[int] = None
    fee_note: str = ""
    requirements: Tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Procedure:
    """A catalogue entry (手続き). ``checked`` is an ISO date or None when unverified;
    ``deadline_days``: days after the life event by which it must be done (None: no deadline)."""

    id: str
    name: str
    aliases: Tuple[str, ...]
    category: str
    area: str
    channels: Mapping[str, Channel]
    documents: Tuple[str, ...]
    department: str
    phone: str
    source_url: str
    checked: Optional[dt.date]
    life_events: Tuple[str, ...] = ()
    summary: str = ""
    deadline: str = ""
    deadline_days: Optional[int] = None
    who: str = ""
    proxy: str = ""
    national_priority: bool = False
    notes: str = ""
    sources: Tuple[str, ...] = ()
    file: str = ""

    @property
    def verified(self) -> bool:
        """True when the facts were checked against the official page (``checked`` is a date)."""
        return self.checked is not None

    def available_channels(self) -> List[Channel]:
        """Available channels, those that spare a visit first (online, コンビニ, 郵送, 窓口)."""
        return [self.channels[c] for c in CHANNELS if c in self.channels and self.channels[c].available]


@dataclass(frozen=True)
class City:
    """Municipality profile (市区町村プロフィール): name, code, phone, website, schedules."""

    id: str
    name: str
    code: str
    phone: str
    website: str
    contact_text: str
    schedules: Mapping[str, Schedule]
    prefecture: str = ""
    address: str = ""
    source_url: str = ""
    checked: Optional[dt.date] = None


@dataclass(frozen=True)
class Catalogue:
    """The city's procedures, by id, in file order."""

    city: City
    procedures: Tuple[Procedure, ...]

    def get(self, procedure_id: str) -> Optional[Procedure]:
        """The procedure with this id, or None."""
        return self._by_id().get(procedure_id)

    def _by_id(self) -> Dict[str, Procedure]:
        return {p.id: p for p in self.procedures}

    def __iter__(self):
        return iter(self.procedures)

    def __len__(self) -> int:
        return len(self.procedures)


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = _read_yaml(SCHEMA_PATH)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _field_path(path: Iterable[Any]) -> Tuple[str, str]:
    """Split a jsonschema error path into (entry index, dotted field path)."""
    parts = list(path)
    entry = ""
    if len(parts) >= 2 and parts[0] == "procedures" and isinstance(parts[1], int):
        entry = f"#{parts[1] + 1}"
        parts = parts[2:]
    return entry, ".".join(str(p) for p in parts)


def _parse_date(value: Any) -> Optional[dt.date]:
    if isinstance(value, dt.date):
        return value
    if value == "unverified" or value is None:
        return None
    return dt.date.fromisoformat(str(value))


def validate_file(path: Path, schedules: Optional[Mapping[str, Any]] = None) -> List[Problem]:
    """Validate one area file against the schema and the city's schedule names.

    Args:
        path: a catalogue YAML file.
        schedules: the city's schedule names; channel ``hours`` given by name must be one of them.
    Returns:
        Problems found ([] when the file is valid). YAML syntax errors are a problem too.
    """
    name = path.name
    try:
        data = _read_yaml(path)
    except yaml.YAMLError as exc:
        return [Problem(name, "", "", f"YAML の書式が正しくありません: {exc}")]
    # PyYAML reads 2026-11-21 as a date; the schema wants strings.
    data = _dates_to_str(data)
    problems: List[Problem] = []
    for err in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        entry, fld = _field_path(err.absolute_path)
        if entry and isinstance(data, dict):
            try:
                entry = data["procedures"][int(entry[1:]) - 1].get("id") or entry
            except (KeyError, IndexError, AttributeError, TypeError):
                pass
        problems.append(Problem(name, entry, fld, err.message))
    if problems or schedules is None:
        return problems
    for proc in data["procedures"]:
        for ch_id, ch in proc["channels"].items():
            hours = ch.get("hours")
            if isinstance(hours, str) and hours not in schedules:
                problems.append(
                    Problem(name, proc["id"], f"channels.{ch_id}.hours",
                            f"受付時間 {hours!r} は city.yml の schedules にありません（{', '.join(schedules)}）")
                )
    return problems


def _dates_to_str(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _dates_to_str(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dates_to_str(v) for v in obj]
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def _schedule(name: str, raw: Mapping[str, Any]) -> Schedule:
    return Schedule(
        name=name,
        text=raw["text"],
        always=bool(raw.get("always", False)),
        weekly=dict(raw.get("weekly") or {}),
        closed_on_holidays=bool(raw.get("closed_on_holidays", False)),
        closed_new_year=bool(raw.get("closed_new_year", False)),
    )


def load_city(city_id: str, cities_dir: Path = CITIES_DIR) -> City:
    """Load ``<cities_dir>/<city_id>/city.yml``.

    Raises:
        CatalogueError: the folder or file is missing or a required key is absent.
    """
    path = cities_dir / city_id / CITY_FILE
    if not path.is_file():
        raise CatalogueError([Problem(str(path), "", "", "市区町村プロフィールがありません")])
    raw = _read_yaml(path) or {}
    missing = [k for k in ("id", "name", "code", "phone", "website", "contact_text", "schedules") if k not in raw]
    if missing:
        raise CatalogueError([Problem(CITY_FILE, "", k, "必須の項目がありません") for k in missing])
    return City(
        id=raw["id"],
        name=raw["name"],
        code=str(raw["code"]),
        phone=raw["phone"],
        website=raw["website"],
        contact_text=raw["contact_text"],
        schedules={k: _schedule(k, v) for k, v in raw["schedules"].items()},
        prefecture=raw.get("prefecture", ""),
        address=raw.get("address", ""),
        source_url=raw.get("source_url", ""),
        checked=_parse_date(raw.get("checked")),
    )


def _channel(ch_id: str, raw: Mapping[str, Any], city: City) -> Channel:
    hours = raw.get("hours")
    if isinstance(hours, str):
        schedule = city.schedules[hours]
    elif isinstance(hours, Mapping):
        schedule = _schedule("custom", hours)
    else:
        schedule = None
    return Channel(
        id=ch_id,
        available=bool(raw["available"]),
        how=raw.get("how", ""),
        url=raw.get("url"),
        hours=schedule,
        fee_yen=raw.get("fee_yen"),
        fee_note=raw.get("fee_note", ""),
        requirements=tuple(raw.get("requirements") or ()),
        note=raw.get("note", ""),
    )


def _procedure(raw: Mapping[str, Any], area: str, city: City, file: str) -> Procedure:
    return Procedure(
        id=raw["id"],
        name=raw["name"],
        aliases=tuple(raw["aliases"]),
        category=raw["category"],
        area=raw.get("area", area),
        channels={c: _channel(c, raw["channels"][c], city) for c in CHANNELS if c in raw["channels"]},
        documents=tuple(raw.get("documents") or ()),
        department=raw["department"],
        phone=raw["phone"],
        source_url=raw["source_url"],
        checked=_parse_date(raw["checked"]),
        life_events=tuple(raw.get("life_events") or ()),
        summary=raw.get("summary", ""),
        deadline=raw.get("deadline", ""),
        deadline_days=raw.get("deadline_days"),
        who=raw.get("who", ""),
        proxy=raw.get("proxy", ""),
        national_priority=bool(raw.get("national_priority", False)),
        notes=raw.get("notes", ""),
        sources=tuple(raw.get("sources") or ()),
        file=file,
    )


def area_files(city_id: str, cities_dir: Path = CITIES_DIR) -> List[Path]:
    """The area files of a city (every ``*.yml`` but city.yml), sorted by name."""
    folder = cities_dir / city_id
    return sorted(p for p in folder.glob("*.yml") if p.name != CITY_FILE)


def validate_city(city_id: str, cities_dir: Path = CITIES_DIR) -> List[Problem]:
    """Every problem in a city's catalogue: schema errors per file, duplicate ids and duplicate aliases.

    An alias (folded for width, case and kana) may name only one procedure, and may not equal
    another procedure's id or name, so that NLU synonyms stay unambiguous; names and aliases may not
    hold the ASCII brackets ``[ ] ( ) { }`` of Rasa's entity markup, as they become training
    examples ``[alias](procedure)``.
    """
    try:
        city = load_city(city_id, cities_dir)
    except CatalogueError as exc:
        return list(exc.problems)
    problems: List[Problem] = []
    files = area_files(city_id, cities_dir)
    if not files:
        problems.append(Problem(str(cities_dir / city_id), "", "", "手続きのファイルがありません"))
    seen_ids: Dict[str, str] = {}
    seen_alias: Dict[str, Tuple[str, str]] = {}
    from bot.nlu.japanese import fold  # local import keeps schema checks usable without sudachipy

    for path in files:
        file_problems = validate_file(path, city.schedules)
        problems.extend(file_problems)
        if file_problems:
            continue
        for raw in _read_yaml(path)["procedures"]:
            pid = raw["id"]
            if pid in seen_ids:
                problems.append(Problem(path.name, pid, "id", f"同じ id が {seen_ids[pid]} にもあります"))
            seen_ids[pid] = path.name
            for alias in [raw["name"], *raw["aliases"]]:
                if any(ch in alias for ch in "[](){}"):
                    problems.append(
                        Problem(path.name, pid, "aliases",
                                f"呼び方「{alias}」に半角の括弧 [ ] ( ) {{ }} は使えません（学習データの書式と"
                                "重なるため）。全角の（）を使ってください")
                    )
                key = fold(alias)
                other = seen_alias.get(key)
                if other and other[0] != pid:
                    problems.append(
                        Problem(path.name, pid, "aliases",
                                f"呼び方「{alias}」は {other[1]} の手続き {other[0]} と重なっています")
                    )
                elif not other:
                    seen_alias[key] = (pid, path.name)
    return problems


def load_catalogue(city_id: Optional[str] = None, cities_dir: Path = CITIES_DIR) -> Catalogue:
    """Load and validate a city's whole catalogue.

    Args:
        city_id: folder name under ``cities_dir``; default the ``CITY`` environment variable or "morioka".
    Raises:
        CatalogueError: with every problem found (file, entry, field), when anything is invalid.
    """
    city_id = city_id or os.environ.get("CITY", "morioka")
    problems = validate_city(city_id, cities_dir)
    if problems:
        raise CatalogueError(problems)
    city = load_city(city_id, cities_dir)
    procedures: List[Procedure] = []
    for path in area_files(city_id, cities_dir):
        raw = _read_yaml(path)
        procedures.extend(_procedure(p, raw["area"], city, path.name) for p in raw["procedures"])
    return Catalogue(city=city, procedures=tuple(procedures))


@lru_cache(maxsize=None)
def default_catalogue(city_id: Optional[str] = None) -> Catalogue:
    """The catalogue of ``city_id`` (default: env CITY or morioka), loaded once per process."""
    return load_catalogue(city_id)


def load_life_events(path: Path = LIFE_EVENTS_FILE) -> Dict[str, Dict[str, Any]]:
    """Life events (ライフイベント) keyed by id: {"label", "keywords": [...], "procedures": [ids]}."""
    return _read_yaml(path) or {}
