"""The ``invoicehub`` command. Commands call the same services as the API and hold no rules;
each is one transaction. Errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys

from invoicehub.cli.main import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
