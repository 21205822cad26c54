"""Texts from templates that teams edit: Jinja2 in a sandbox, zh-CN and en.

Templates (``templates/*.j2``, Excel column maps, a campaign's own text) are data that
people change without a code review, so they run in Jinja2's immutable sandbox with
strict undefined: reaching Python internals (``''.__class__``) or mutating objects is
refused with ``TemplateRefused`` instead of silently rendering.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bot.core import timefmt
from bot.core.i18n import normalise

log = logging.getLogger(__name__)
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


class TemplateRefused(Exception):
    """A template broke the sandbox rules or failed to render."""


def _money(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value:.0%}"


def _local(value: Any, fmt: str = timefmt.DEFAULT_FMT) -> str:
    """``{{ campaign.event_end|local }}``: a time on the team's wall clock."""
    return timefmt.local(value, fmt=fmt) if isinstance(value, datetime) else str(value)


def _localdate(value: Any) -> str:
    """``{{ d.valid_until|localdate }}``: the team's calendar day (``.date()`` is the UTC day)."""
    return _local(value, "%Y-%m-%d")


def _finalize(value: Any) -> Any:
    """Every ``{{ … }}`` that is a bare datetime is shown in the team's zone, not as UTC."""
    return timefmt.local(value) if isinstance(value, datetime) else value


@lru_cache(maxsize=4)
def environment(directory: str = str(TEMPLATES_DIR)) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(loader=FileSystemLoader(directory), autoescape=False,
                                        undefined=StrictUndefined, trim_blocks=True,
                                        lstrip_blocks=True, keep_trailing_newline=False,
                                        finalize=_finalize)
    env.filters["money"] = _money
    env.filters["pct"] = _pct
    env.filters["local"] = _local
    env.filters["localdate"] = _localdate
    return env


def render(name: str, lang: str | None = None, **context: Any) -> str:
    """``templates/<name>.<lang>.j2`` rendered with ``context`` (plain text, not HTML)."""
    env = environment()
    try:
        template = env.get_template(f"{name}.{normalise(lang)}.j2")
        return template.render(lang=normalise(lang), **context).strip()
    except TemplateNotFound as exc:
        raise TemplateRefused(f"no template {name} for {normalise(lang)}") from exc
    except (SecurityError, TemplateError) as exc:
        log.warning("template refused", extra={"template": name, "error": str(exc)[:200]})
        raise TemplateRefused(str(exc)) from exc


def render_string(source: str, **context: Any) -> str:
    """Render a template text someone supplied (a notice text, a team's own card text)."""
    try:
        return environment().from_string(source).render(**context)
    except (SecurityError, TemplateError) as exc:
        log.warning("template refused", extra={"error": str(exc)[:200]})
        raise TemplateRefused(str(exc)) from exc


def expression(source: str):
    """A compiled sandboxed expression (``line.promo_price``) returning the raw value."""
    try:
        compiled = environment().compile_expression(source, undefined_to_none=False)
    except TemplateError as exc:
        raise TemplateRefused(f"bad expression {source!r}: {exc}") from exc

    def evaluate(**context: Any) -> Any:
        try:
            return compiled(**context)
        except (SecurityError, TemplateError) as exc:
            raise TemplateRefused(f"{source!r}: {exc}") from exc

    return evaluate
