"""``promopilot platforms``: the marketplace connectors, what each can do, and their health;
``promopilot platforms credentials set|list|rotate``: each shop's credentials, encrypted.

Credentials are prompted for (secrets hidden), never taken on the command line, where the
shell history and the process list would keep them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

from bot.core.i18n import t
from bot.core.settings import get_settings
from bot.core.timefmt import stated

GENERATE = ('python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"')

platforms_app = typer.Typer(help="Marketplace connectors: capabilities, health, credentials.",
                            invoke_without_command=True)
credentials_app = typer.Typer(help="Each shop's marketplace credentials (encrypted at rest).")
platforms_app.add_typer(credentials_app, name="credentials")


def _lang() -> str:
    return get_settings().language


def _db():
    from storage.db import Database

    return Database(get_settings().database_url)


def _fail(key: str, **params: Any) -> None:
    typer.echo(t(key, _lang(), **params), err=True)
    raise typer.Exit(code=2)


def _store(db):
    from adapters.platforms.connector.credentials import (
        ENV,
        CredentialStore,
        SecretBox,
        SecretKeyMissing,
    )

    try:
        SecretBox()
    except SecretKeyMissing:
        _fail("platforms.no_secret_key", env=ENV, command=GENERATE)
    return CredentialStore(db)


def _connectors(db) -> list:
    from adapters.platforms.connector import config

    try:
        return config.build(db)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None


def _row(connector: Any, lang: str) -> dict:
    from adapters.platforms.connector.errors import platform_term
    from storage.models_connectors import PlatformCredential

    state = connector.health.read()
    with connector.db.session() as session:
        from sqlmodel import select

        stored = session.exec(select(PlatformCredential.id).where(
            PlatformCredential.platform == connector.platform,
            PlatformCredential.shop == connector.shop)).first() is not None
    error = None
    if state is not None and state.last_error_key:
        params = dict(state.last_error_params or {})
        params["platform"] = platform_term(params.get("platform") or connector.platform)
        error = t(state.last_error_key, lang, **params)
    return {"name": connector.name, "kind": connector.kind, "platform": connector.platform,
            "shop": connector.shop, "capability": connector.capability,
            "operations": sorted(connector.operations), "gateway": connector.gateway,
            "source": connector.config.source, "submitter": connector.config.submitter,
            "credentials": stored, "ok": state.ok if state else None,
            "last_call": state.last_call if state else None,
            "last_call_at": stated(state.last_call_at) if state and state.last_call_at else None,
            "last_ok_at": stated(state.last_ok_at) if state and state.last_ok_at else None,
            "last_error": error,
            "last_error_at": stated(state.last_error_at) if state and state.last_error_at
            else None,
            "calls": state.calls if state else 0, "failures": state.failures if state else 0}


@platforms_app.callback(invoke_without_command=True)
def platforms(ctx: typer.Context,
              as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """List the configured connectors, their capabilities and health (last call, last error)."""
    if ctx.invoked_subcommand:
        return
    from adapters.platforms.connector.config import ENV

    lang = _lang()
    rows = [_row(c, lang) for c in _connectors(_db())]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo(t("platforms.none", lang, env=ENV))
        return
    for r in rows:
        status = "—   " if r["ok"] is None else ("OK  " if r["ok"] else "FAIL")
        typer.echo(f"{status} {r['name']:<24} {r['platform']:<6} shop={r['shop']} "
                   f"{r['capability']} credentials={'yes' if r['credentials'] else 'no'}")
        typer.echo(f"     can: {', '.join(r['operations']) or '—'}")
        typer.echo(f"     last call: {r['last_call'] or '—'} {r['last_call_at'] or ''} "
                   f"ok={r['last_ok_at'] or '—'} calls={r['calls']} failures={r['failures']}")
        if r["last_error"]:
            typer.echo(f"     last error ({r['last_error_at']}): {r['last_error']}")
    if any(r["ok"] is False for r in rows):
        raise typer.Exit(code=1)


@credentials_app.command("set")
def credentials_set(platform: str = typer.Argument(..., help="pdd, temu …"),
                    shop: str = typer.Argument(..., help="the shop, as in connectors.yaml")) -> None:
    """Store a shop's credentials, prompted for (secrets hidden; empty keeps the stored value)."""
    from adapters.platforms.connector.config import KINDS, kind_class

    db = _db()
    store = _store(db)
    fields: tuple = ()
    for c in _connectors(db):
        if c.platform == platform and c.credential_fields:  # (an assisted one asks for none)
            fields = c.credential_fields
            break
    else:
        if platform in KINDS:
            fields = kind_class(platform).credential_fields
    if not fields:
        known = ", ".join(sorted({c.platform for c in _connectors(db)} | set(KINDS)))
        _fail("platforms.unknown_platform", platform=platform, known=known)
    values = {}
    for name, secret in fields:
        values[name] = typer.prompt(name, default="", show_default=False, hide_input=secret)
    saved = store.set(platform, shop, values)
    typer.echo(t("platforms.credentials_saved", _lang(), platform=platform, shop=shop,
                 fields=", ".join(saved)))


@credentials_app.command("list")
def credentials_list() -> None:
    """Every shop with stored credentials and the names of its fields (never the values)."""
    for row in _store(_db()).listing():
        fields = ", ".join(row["fields"]) if row["readable"] else "(sealed with an unknown key)"
        typer.echo(f"{row['platform']:<6} {row['shop']:<20} {fields}  "
                   f"updated {stated(row['updated_at'])}")


@credentials_app.command("rotate")
def credentials_rotate() -> None:
    """Re-encrypt every stored credential with the newest key (the first in the variable)."""
    from adapters.platforms.connector.credentials import ENV, SealedWithUnknownKey

    try:
        n = _store(_db()).rotate_all()
    except SealedWithUnknownKey:
        _fail("platforms.unknown_key", env=ENV)
    typer.echo(t("platforms.rotated", _lang(), n=n))


def register(app: typer.Typer, build_container: Callable[[], Any]) -> None:
    app.add_typer(platforms_app, name="platforms")
