"""Rasa NLU training data (学習データ) as staff tools see it: read, check, resolve, write.

- :func:`read_examples` reads every ``- intent:`` block of Rasa 3 YAML NLU files (entity markup
  ``[住民票](procedure)`` removed for comparison).
- :func:`check_examples` finds the same example under two intents (conflict, 矛盾) and the same
  example twice under one intent (duplicate, 重複), comparing :func:`normalize_example` forms.
  Examples generated from the catalogue (``metadata: {source: catalogue}``) count for conflicts but
  not for duplicates: a hand-written 「住民票」 beside the alias 住民票 is expected.
- :class:`TargetResolver` maps what staff write in the 意図 column (an intent, a procedure id, a
  procedure name or alias, a life-event label) to the Rasa intent, e.g. 住民票 →
  ``ask_procedure/juminhyo_copy``.
- :func:`write_nlu_file` writes examples grouped by intent as a Rasa NLU file.

Sources: Rasa 3.x training data format (https://rasa.com/docs/rasa/training-data-format), retrieval
intents ``ask_procedure/<key>`` (https://rasa.com/docs/rasa/chitchat-faqs); normalization is
:func:`bot.nlu.japanese.fold` (NFKC, lower case, katakana → hiragana, no spaces) without punctuation.
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

from bot.nlu.japanese import fold
from procedures.catalogue import CATALOGUE_SOURCE

#: ``[text](entity)``, ``[text](entity:value)``, ``[text]{"entity": ...}`` and ``[text][{...}]``.
ENTITY_MARKUP = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\])")
#: The retrieval intent whose keys are procedure ids and life-event keys.
RETRIEVAL_INTENT = "ask_procedure"


@dataclass(frozen=True)
class Example:
    """One training example: ``intent`` as written (``ask_procedure/juminhyo_copy``), ``text``
    without entity markup, ``source`` (``file:line`` relative to the repository, or a spreadsheet
    row such as ``例文.xlsx 3行目``), ``generated`` when it comes from the catalogue (an intent
    block with ``metadata: {source: catalogue}``, written by ``python -m procedures export-nlu``)."""

    intent: str
    text: str
    source: str
    generated: bool = False

    @property
    def key(self) -> str:
        """The comparison form (:func:`normalize_example`)."""
        return normalize_example(self.text)


@dataclass(frozen=True)
class Finding:
    """A problem found by :func:`check_examples`: ``level`` is ``"error"`` (conflict) or
    ``"warning"`` (duplicate within one intent); ``message`` is Japanese and names files/rows."""

    level: str
    message: str


def plain_text(example: str) -> str:
    """The example without Rasa entity markup: ``[住民票](procedure)を取りたい`` → ``住民票を取りたい``."""
    return ENTITY_MARKUP.sub(r"\1", example).strip()


def normalize_example(text: str) -> str:
    """Comparison form of an example: markup removed, :func:`bot.nlu.japanese.fold` (NFKC, lower
    case, katakana → hiragana, no spaces), punctuation and symbols (Unicode P*/S*) removed.

    >>> normalize_example("[ｼﾞｭｳﾐﾝﾋｮｳ](procedure)取りたい！")
    'じゅうみんひょう取りたい'
    """
    folded = fold(plain_text(text))
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PS")


def _examples_block(block: str) -> List[str]:
    out = []
    for line in (block or "").splitlines():
        line = line.strip()
        if line.startswith("- "):
            out.append(line[2:].strip())
        elif line == "-":
            continue
    return [e for e in out if e]


def read_examples(paths: Iterable[Path], root: Optional[Path] = None) -> List[Example]:
    """All intent examples in the given Rasa NLU YAML files (files without ``nlu:`` give none).

    Args:
        paths: YAML files, e.g. ``sorted(Path("data/nlu").rglob("*.yml"))``.
        root: when given, sources are shown relative to it.
    Returns:
        Examples in file order.
    Raises:
        ValueError: a file is not valid YAML (message names the file).
    """
    out: List[Example] = []
    for path in paths:
        raw = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(raw) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: YAML として読めません: {exc}") from exc
        shown = str(path.relative_to(root)) if root and path.is_absolute() and path.is_relative_to(root) else str(path)
        lines = [line.strip() for line in raw.splitlines()]
        cursor = 0
        for item in (data.get("nlu") or []) if isinstance(data, dict) else []:
            if isinstance(item, dict) and "intent" in item:
                metadata = item.get("metadata")
                generated = isinstance(metadata, dict) and metadata.get("source") == CATALOGUE_SOURCE
                for text in _examples_block(item.get("examples") or ""):
                    # line number of this example (examples appear in file order)
                    number = next((i for i in range(cursor, len(lines)) if lines[i] == f"- {text}"), None)
                    if number is not None:
                        cursor = number + 1
                    where = f"{shown}:{number + 1}" if number is not None else shown
                    out.append(Example(intent=str(item["intent"]), text=plain_text(text), source=where,
                                       generated=generated))
    return out


def check_examples(examples: Sequence[Example]) -> List[Finding]:
    """Conflicts (same normalized example under different intents: error) and duplicates (same
    normalized example twice under one intent among the hand-written ones: warning).

    Args:
        examples: e.g. from :func:`read_examples` over every ``data/nlu`` file.
    Returns:
        Findings, errors first, each naming the example, the intents and where they are.
    """
    by_key: Dict[str, List[Example]] = defaultdict(list)
    for example in examples:
        if example.key:
            by_key[example.key].append(example)
    errors: List[Finding] = []
    warnings: List[Finding] = []
    for group in by_key.values():
        if len(group) < 2:
            continue
        intents = sorted({e.intent for e in group})
        places = "、".join(f"{e.source}（{e.intent}）" for e in group)  # source = file:line
        if len(intents) > 1:
            errors.append(Finding("error", f"矛盾: 例文「{group[0].text}」が別々の意図 {' と '.join(intents)} にあります: {places}"))
        elif sum(not e.generated for e in group) >= 2:
            warnings.append(Finding("warning", f"重複: 例文「{group[0].text}」が {intents[0]} に{len(group)}回あります: {places}"))
    return errors + warnings


class TargetResolver:
    """Maps the 意図 cell of a staff spreadsheet to a Rasa intent (意図・手続きの解決).

    Accepted (checked in this order, after NFKC and trimming):
      1. an intent of the domain, e.g. ``ask_fee`` (not the bare ``ask_procedure``);
      2. ``ask_procedure/<key>`` or a bare ``<key>`` where key is a procedure id or life-event key
         with a retrieval response (``utter_ask_procedure/<key>`` in the generated NLU file);
      3. a procedure name or alias of the catalogue (住民票の写しの交付, 住民票), or a life-event
         label (出産), compared with :func:`bot.nlu.japanese.fold`.
    """

    def __init__(self, intents: Iterable[str], retrieval_keys: Iterable[str], names: Mapping[str, Sequence[str]]):
        """``intents``: domain intents; ``retrieval_keys``: valid keys of ask_procedure;
        ``names``: folded name/alias → keys it may mean (more than one means ambiguous)."""
        self.intents = {i for i in intents if i != RETRIEVAL_INTENT}
        self.retrieval_keys = set(retrieval_keys)
        self.names = {k: list(v) for k, v in names.items()}

    @classmethod
    def from_repo(cls, repo: Path, city: str) -> "TargetResolver":
        """Build from ``domain.yml``, ``data/nlu/generated/procedures.yml`` (retrieval responses),
        the city's catalogue (names, aliases) and ``procedures/life_events.yml`` (labels).
        Cached while none of these files changes (modification times).

        Raises:
            FileNotFoundError / yaml.YAMLError: a file is missing or broken.
            procedures.catalogue.CatalogueError: the catalogue is invalid.
        """
        sources = [repo / "domain.yml", repo / "data/nlu/generated/procedures.yml", repo / "procedures/life_events.yml",
                   *sorted((repo / "procedures" / "cities" / city).glob("*.yml"))]
        stamp = tuple((str(p), p.stat().st_mtime_ns if p.exists() else 0) for p in sources)
        return _resolver(repo, city, stamp)

    @classmethod
    def _build(cls, repo: Path, city: str) -> "TargetResolver":
        from procedures.catalogue import load_catalogue, load_life_events

        domain = yaml.safe_load((repo / "domain.yml").read_text(encoding="utf-8")) or {}
        intents = [next(iter(i)) if isinstance(i, dict) else str(i) for i in domain.get("intents") or []]
        generated = yaml.safe_load((repo / "data/nlu/generated/procedures.yml").read_text(encoding="utf-8")) or {}
        prefix = f"utter_{RETRIEVAL_INTENT}/"
        keys = [k[len(prefix):] for k in (generated.get("responses") or {}) if k.startswith(prefix)]
        names: Dict[str, List[str]] = defaultdict(list)
        catalogue = load_catalogue(city, repo / "procedures" / "cities")
        for procedure in catalogue:
            for name in (procedure.name, *procedure.aliases):
                if procedure.id not in names[fold(name)]:
                    names[fold(name)].append(procedure.id)
        for key, event in load_life_events(repo / "procedures" / "life_events.yml").items():
            label = fold(str(event.get("label") or ""))
            if label and key in keys and key not in names[label]:
                names[label].append(key)
        return cls(intents, keys, names)

    def resolve(self, value: str) -> Tuple[Optional[str], str]:
        """(intent, '') when ``value`` is understood, else (None, Japanese reason).

        >>> r = TargetResolver(["ask_fee", "ask_procedure"], ["juminhyo_copy"], {"住民票": ["juminhyo_copy"]})
        >>> r.resolve("住民票"), r.resolve("ask_fee")[0], r.resolve("ask_procedure")[0]
        (('ask_procedure/juminhyo_copy', ''), 'ask_fee', None)
        """
        text = unicodedata.normalize("NFKC", value or "").strip()
        if not text:
            return None, "意図（または手続き）が空です。"
        if text in self.intents:
            return text, ""
        if text == RETRIEVAL_INTENT:
            return None, f"「{RETRIEVAL_INTENT}」だけでは手続きが決まりません。手続き id（例: juminhyo_copy）か手続き名を書いてください。"
        key = text.split("/", 1)[1] if text.startswith(f"{RETRIEVAL_INTENT}/") else text
        key = key.lower()  # ids are lower case; spreadsheets like to capitalise the first letter
        if key in self.retrieval_keys:
            return f"{RETRIEVAL_INTENT}/{key}", ""
        matches = self.names.get(fold(text), [])
        if len(matches) == 1 and matches[0] in self.retrieval_keys:
            return f"{RETRIEVAL_INTENT}/{matches[0]}", ""
        if len(matches) > 1:
            return None, f"「{text}」は複数の手続き（{'、'.join(matches)}）に当てはまります。手続き id で書いてください。"
        return None, (f"「{text}」という意図・手続きは見つかりません。意図（{', '.join(sorted(self.intents))}）か、"
                      "カタログの手続き id・手続き名を書いてください。")


@lru_cache(maxsize=4)
def _resolver(repo: Path, city: str, stamp: Tuple[Tuple[str, int], ...]) -> TargetResolver:
    return TargetResolver._build(repo, city)


def entity_surfaces(repo: Path) -> List[Tuple[str, str]]:
    """Words to mark as entities in staff examples, longest first: ``[(surface, entity), ...]``.

    Sources: the catalogue aliases in ``data/nlu/generated/procedures.yml`` (entity ``procedure``;
    the EntitySynonymMapper maps them to the procedure id) and ``data/nlu/channel_synonyms.yml``
    (entity ``channel``). Surfaces shorter than 2 characters are left out. Missing files give
    fewer surfaces, never an error.
    """
    pairs: Dict[str, str] = {}
    for name, entity in (("generated/procedures.yml", "procedure"), ("channel_synonyms.yml", "channel")):
        path = repo / "data" / "nlu" / name
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in data.get("nlu") or []:
            if not isinstance(item, dict) or "synonym" not in item:
                continue
            for line in str(item.get("examples") or "").splitlines():
                surface = line.strip().lstrip("-").strip()
                if len(surface) >= 2 and not set("[]()") & set(surface):
                    pairs.setdefault(surface, entity)
    examples = _hand_examples(repo)
    # Words the hand-written data marks (e.g. [児童手当](procedure), not a catalogue alias) count too.
    marked: Dict[Tuple[str, str], int] = {}
    for line in examples:
        for surface, entity in re.findall(r"\[([^\]\[()]{2,})\]\((procedure|channel)\)", line):
            pairs.setdefault(surface, entity)
            marked[(surface, entity)] = marked.get((surface, entity), 0) + 1
    # Words the hand-written examples mostly leave unmarked (役所 in 「役所で何をすれば」 is not a
    # choice of channel) are not marked either: unmarked in more than half of their occurrences.
    # Only example lines count, with their marked spans blanked out, so that 介護認定 inside
    # [要介護認定の申請](procedure) or in a synonym list is not taken for an unmarked use.
    plain = "\n".join(re.sub(r"\[[^\]]*\]\([^)]*\)|\[[^\]]*\]\{[^}]*\}", "■", line) for line in examples)
    for surface, entity in list(pairs.items()):
        done = marked.get((surface, entity), 0)
        if entity == "channel" or done:
            unmarked = plain.count(surface)
            if unmarked > done and unmarked > 2:
                del pairs[surface]
    return sorted(pairs.items(), key=lambda kv: (-len(kv[0]), kv[0]))


def _hand_examples(repo: Path) -> List[str]:
    """The example lines (``- …`` under ``examples: |``) of the hand-written ``data/nlu/*.yml``
    (not generated/, not the staff files, not synonym or lookup lists)."""
    lines: List[str] = []
    for path in sorted((repo / "data" / "nlu").glob("*.yml")):
        if path.name.startswith("staff_") or path.name.startswith("review_"):
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in data.get("nlu") or []:
            if isinstance(item, dict) and "intent" in item:
                lines.extend(_examples_block(str(item.get("examples") or "")))
    return lines


def annotate_entities(text: str, surfaces: Sequence[Tuple[str, str]]) -> str:
    """Mark entity words in a plain example the way the hand-written data does:
    「死亡届はどこに出せばいい」 → 「[死亡届](procedure)はどこに出せばいい」.

    Greedy, longest surface first, non-overlapping. Unmarked procedure names would teach the
    entity extractor that they are not entities. Text holding ``[`` or ``]`` is returned as is.
    """
    if not surfaces or "[" in text or "]" in text:
        return text
    taken: List[Tuple[int, int, str]] = []
    for surface, entity in surfaces:
        start = text.find(surface)
        while start >= 0:
            end = start + len(surface)
            if all(end <= a or start >= b for a, b, _ in taken):
                taken.append((start, end, entity))
            start = text.find(surface, end)
    out, pos = [], 0
    for start, end, entity in sorted(taken):
        out.append(text[pos:start] + f"[{text[start:end]}]({entity})")
        pos = end
    return "".join(out) + text[pos:]


def write_nlu_file(
    path: Path, examples: Sequence[Tuple[str, str]], header: str, surfaces: Sequence[Tuple[str, str]] = ()
) -> None:
    """Write ``(intent, text)`` pairs as a Rasa NLU YAML file, one block per intent (first-seen order).

    Args:
        path: output file (parent folders are created).
        examples: (intent, plain example text); text is written on one line (line breaks become spaces).
        header: comment lines written first (each line is prefixed with ``# ``).
        surfaces: entity words to mark (:func:`entity_surfaces`); none by default.
    """
    groups: Dict[str, List[str]] = {}
    for intent, text in examples:
        groups.setdefault(intent, []).append(annotate_entities(" ".join(text.split()), surfaces))
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ['version: "3.1"', "nlu:" if groups else "nlu: []"]
    for intent, texts in groups.items():
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {t}" for t in texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def nlu_files(repo: Path) -> List[Path]:
    """Every NLU YAML file Rasa trains on: ``data/nlu/**/*.yml`` (sorted)."""
    return sorted((repo / "data" / "nlu").rglob("*.yml"))
