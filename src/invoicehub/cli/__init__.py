"""The ``invoicehub`` command. Commands call the same services as the API and hold no rules;
each is one transaction. Errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from invoicehub.cli.main import app
from invoicehub.cli.people import bots_app, wallet_app

app.add_typer(wallet_app, name="wallet")
app.add_typer(bots_app, name="bots")


def main() -> None:
    try:
        # standalone_mode=False hands usage errors to us, so they are one line like the rest.
        result = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        sys.exit(130)
    except TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            sys.stdout.write(ctx.get_help() + "\n")
            sys.exit(0)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        sys.stderr.write(f"error: {message}{hint}\n")
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(result, int):
        sys.exit(result)
