"""User-facing texts in zh-CN and en. Every message a person can see goes through ``t``.

The texts live in gettext catalogs, ``locale/<lang>/LC_MESSAGES/promopilot.po``, read with
Babel at import. A message id is a stable key (``err.not_found``), not the English text, so a
wording change in one language never orphans the other; ``{name}`` placeholders are
``str.format`` fields. Parameters that are themselves words (a role, a state, an action) are
passed as ``Term`` and rendered in the reader's language, so a Chinese sentence never carries
an English role name; a ``platform`` parameter that is a known marketplace code (``tmall``)
is shown by its name in the reader's language (天猫 / Tmall), wherever it comes from. A
``datetime`` parameter is shown in the team's zone by
``bot.core.timefmt`` (``{when}``, or ``{when:%m-%d %H:%M}`` for another format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from babel.messages.pofile import read_po

from bot.core.platforms import PLATFORM_NAMES
from bot.core.timefmt import Shown

LANGS = ("zh-CN", "en")
LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
DOMAIN = "promopilot"
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _po_path(lang: str) -> Path:
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_catalog(lang: str) -> dict[str, str]:
    """Every message of one language as ``{key: template}``."""
    with _po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang.replace("-", "_"))
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string}


_CATALOGUE: dict[str, dict[str, str]] = {lang: load_catalog(lang) for lang in LANGS}


def normalise(lang: str | None) -> str:
    if not lang:
        return "zh-CN"
    return "en" if lang.lower().startswith("en") else "zh-CN"


@dataclass(frozen=True)
class Term:
    """A word from the catalog used as a parameter (``Term("role.finance")``): rendered in
    the language of the message it goes into. ``Term.join`` lists several."""

    key: str
    params: tuple[tuple[str, object], ...] = ()

    @staticmethod
    def of(key: str, **params: object) -> Term:
        return Term(key, tuple(params.items()))

    def render(self, lang: str | None) -> str:
        return t(self.key, lang, **dict(self.params))


@dataclass(frozen=True)
class Terms:
    """Several terms shown as one list, joined the way each language joins a list."""

    items: tuple[Term | str, ...]
    empty: Term | str = "-"

    def render(self, lang: str | None) -> str:
        parts = [i.render(lang) if isinstance(i, Term) else i for i in self.items]
        if not parts:
            return self.empty.render(lang) if isinstance(self.empty, Term) else self.empty
        return ("、" if normalise(lang) == "zh-CN" else ", ").join(parts)


def roles(names: object) -> Terms:
    """Role codes (``finance``) as words a person reads (财务 / Finance)."""
    return Terms(tuple(Term(f"role.{r}") for r in sorted(names)), empty=Term("role.none"))  # type: ignore[arg-type]


def platform_name(code: str, lang: str | None, stored: str | None = None) -> str:
    """A marketplace as the reader calls it: a known one's name in their language (天猫 /
    Tmall), else the name a team gave its own platform (``stored``), else the code."""
    if code in PLATFORM_NAMES:
        return t(f"dash.platform.{code}", lang)
    return stored or code


def _param(name: str, value: object, lang: str) -> object:
    if name == "platform" and isinstance(value, str) and value in PLATFORM_NAMES:
        return platform_name(value, lang)  # never a code in a sentence
    if isinstance(value, datetime):  # the team's zone; naive: refused (strict) or taken as UTC
        return Shown(value)
    return value.render(lang) if isinstance(value, Term | Terms) else value


def t(key: str, lang: str | None = None, **params: object) -> str:
    lang = normalise(lang)
    template = _CATALOGUE[lang].get(key)
    if template is None:
        return key
    try:
        return template.format(**{k: _param(k, v, lang) for k, v in params.items()})
    except (KeyError, IndexError):
        return template


def has(key: str) -> bool:
    return key in _CATALOGUE["en"] or key in _CATALOGUE["zh-CN"]


def looks_chinese(text: str) -> bool:
    return bool(_CJK.search(text or ""))
