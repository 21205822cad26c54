"""Which columns an imported file has: the fields of each kind of file (products, documents,
prices), the header names that mean them (``columns/headers.yaml`` plus a team's own file),
and finding the header row of a file — with every column that no field uses reported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from bot.core.platforms import PLATFORM_CODES
from bot.declarations.settings import get_data_settings

COLUMNS_DIR = Path(__file__).resolve().parents[2] / "columns"
HEADERS_FILE = COLUMNS_DIR / "headers.yaml"
HEADER_SCAN_ROWS = 10
_IGNORED = re.compile(r"[\s_*]+|\((?:必填|选填|可选|必须)\)")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"  # text, code, money, int, date, expiry
    required: bool = False
    max_len: int = 0
    aliases: tuple[str, ...] = ()  # from the header files


FIELDS: dict[str, list[Column]] = {
    "products": [
        Column("sku", "code", True, 64), Column("barcode", "code", max_len=64),
        Column("title", required=True), Column("brand", max_len=128),
        Column("category", max_len=128), Column("list_price", "money", True),
        Column("cost", "money"), Column("stock", "int", True), Column("safety_stock", "int"),
        Column("image", max_len=512),
        *[Column(f"category_{p}", max_len=128) for p in PLATFORM_CODES],
        *[Column(f"item_id_{p}", "code", max_len=64) for p in PLATFORM_CODES],
        *[Column(f"sku_id_{p}", "code", max_len=64) for p in PLATFORM_CODES],
    ],
    "documents": [
        Column("file", required=True, max_len=512), Column("kind", required=True, max_len=64),
        Column("title", required=True, max_len=256), Column("issuer", max_len=256),
        Column("brand", max_len=128), Column("valid_until", "expiry", True),
    ],
    "prices": [
        Column("sku", "code", True, 64), Column("platform", required=True, max_len=32),
        Column("price", "money", True), Column("date", "date", True),
    ],
    # campaign results and competitors' prices (bot/insight/results.py, alerts.py)
    "results": [
        Column("platform", required=True, max_len=32), Column("campaign", "code", True, 128),
        Column("sku", "code", max_len=64), Column("slot", max_len=128),
        Column("date", "date"), Column("exposure", "int"), Column("clicks", "int"),
        Column("orders", "int"), Column("units", "int", True), Column("gmv", "money", True),
        Column("fees", "money"),
    ],
    "competitor_prices": [
        Column("platform", required=True, max_len=32), Column("sku", "code", True, 64),
        Column("competitor", required=True, max_len=128), Column("price", "money", True),
        Column("url", max_len=1000), Column("date", "date"),
    ],
}


class HeaderFileError(ValueError):
    """A header names file that cannot be used; ``file`` and ``why`` say what to fix."""

    def __init__(self, file: str, why: str) -> None:
        super().__init__(f"{file}: {why}")
        self.file, self.why = file, why


def norm(header: Any) -> str:
    """A header as compared: NFKC (full-width → half-width), lower case, no spaces, ``_``, ``*``
    or "(必填)"."""
    text = unicodedata.normalize("NFKC", str(header or "")).strip().lower()
    return _IGNORED.sub("", text)


def _read(path: Path) -> dict[str, dict[str, list[str]]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise HeaderFileError(path.name, str(exc).splitlines()[0][:200]) from exc
    if not isinstance(data, dict):
        raise HeaderFileError(path.name, "products: {field: [names]}, documents: …, prices: …")
    out: dict[str, dict[str, list[str]]] = {}
    for kind, fields in data.items():
        if kind not in FIELDS:
            raise HeaderFileError(path.name, f"{kind!r}: use {', '.join(FIELDS)}")
        known = {c.name for c in FIELDS[kind]}
        if not isinstance(fields, dict):
            raise HeaderFileError(path.name, f"{kind}: {{field: [names]}}")
        for name, names in fields.items():
            if name not in known:
                raise HeaderFileError(path.name, f"{kind}.{name}: use {', '.join(sorted(known))}")
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not all(isinstance(n, str | int) for n in names):
                raise HeaderFileError(path.name, f"{kind}.{name}: a list of names")
            out.setdefault(kind, {})[name] = [str(n) for n in names]
    return out


def team_file() -> Path | None:
    value = get_data_settings().headers_file.strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = path if path.exists() else COLUMNS_DIR / value
    if not path.exists():
        raise HeaderFileError(value, "file not found (PROMOPILOT_HEADERS_FILE)")
    return path


def columns_for(kind: str, team: Path | None = None) -> list[Column]:
    """The fields of ``kind`` with their header names: the team's first (each taken away from
    any other field), then the defaults of ``columns/headers.yaml``."""
    defaults = _read(HEADERS_FILE).get(kind, {})
    team = team if team is not None else team_file()
    own = _read(team).get(kind, {}) if team else {}
    claimed = {norm(n): name for name, names in own.items() for n in names}
    out = []
    for column in FIELDS[kind]:
        names = [*own.get(column.name, []), *[
            n for n in defaults.get(column.name, [column.name])
            if claimed.get(norm(n), column.name) == column.name]]
        unique = tuple(dict.fromkeys(n for n in names if norm(n)))
        out.append(replace(column, aliases=unique))
    return out


def display_names(column: Column, lang: str | None) -> str:
    """How a missing column is named to a person: its Chinese names for zh-CN, the English
    name first for en (the first few of each)."""
    cjk = [n for n in column.aliases if _CJK.search(n)][:4]
    latin = [n for n in column.aliases if not _CJK.search(n)][:1]
    chosen = cjk if (lang or "zh-CN").startswith("zh") and cjk else [*latin, *cjk[:3]]
    return "/".join(chosen or [column.name])


@dataclass
class HeaderMatch:
    row: int  # the header's row number
    index: dict[str, int]  # field → column index
    headers: dict[str, str]  # field → the file's own header text
    unused: list[tuple[str, str | None]] = field(default_factory=list)  # header, used instead
    named: set[int] = field(default_factory=set)  # indexes of the columns with a header


def match(cells: list[Any], columns: list[Column]) -> HeaderMatch:
    names = [norm(c) for c in cells]
    index: dict[str, int] = {}
    for column in columns:
        for alias in column.aliases:
            key = norm(alias)
            if key in names:
                index[column.name] = names.index(key)
                break
    used = set(index.values())
    owner = {norm(a): c.name for c in columns for a in c.aliases}
    unused: list[tuple[str, str | None]] = []
    for i, (cell, key) in enumerate(zip(cells, names, strict=True)):
        if not key or i in used:
            continue
        same = owner.get(key)
        unused.append((str(cell).strip(), str(cells[index[same]]).strip() if same in index else None))
    return HeaderMatch(0, index, {name: str(cells[i]).strip() for name, i in index.items()},
                       unused, {i for i, key in enumerate(names) if key})


def missing(found: HeaderMatch, columns: list[Column]) -> list[Column]:
    return [c for c in columns if c.required and c.name not in found.index]
