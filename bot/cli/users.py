"""``promopilot user passwd <name>``: set the password a person logs in to the console with.

The password is asked twice without echo, or read from standard input with
``--password-stdin`` (for scripts: ``printf %s "$PW" | promopilot user passwd li.na
--password-stdin``); it never appears in a command line, the shell history or the logs.
Setting a new password ends the person's open console sessions.
"""

from __future__ import annotations

import sys

import typer

from bot.core.errors import DomainError
from bot.core.settings import get_settings

user_app = typer.Typer(help="People who use the web console.", no_args_is_help=True)


@user_app.command("passwd")
def passwd(name: str = typer.Argument(..., help="the person's user name, e.g. li.na"),
           password_stdin: bool = typer.Option(False, "--password-stdin",
                                               help="read the password from standard input")
           ) -> None:
    """Set (or change) a person's console password (argon2id hash; at least 10 characters)."""
    from bot.core.passwords import set_password
    from storage.db import Database

    settings = get_settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            user = set_password(session, name, password)
            shown = f"{user.display_name} ({user.name})"
    except DomainError as exc:
        typer.echo(exc.message(settings.language), err=True)
        raise typer.Exit(code=1) from None
    finally:
        db.dispose()
    typer.echo(f"password set for {shown}")


def register(app: typer.Typer, build_container=None) -> None:
    """Adds ``promopilot user …`` (needs no container: only the database)."""
    app.add_typer(user_app, name="user")
