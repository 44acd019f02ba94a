"""`consentry`: the command line (serve, settings, api-key, ...). Each module registers its
commands on the groups of `common`."""

from __future__ import annotations

import logging

from consentry.cli import admin, config, integrity, server
from consentry.cli.common import app, console
from consentry.cli.server import worker_app
from consentry.errors import ConsentryError

__all__ = ["admin", "app", "config", "integrity", "main", "server", "worker_app"]


def main() -> None:
    """Entry point: domain errors end the command with their code, not a traceback."""
    # Warnings only: a command's output is its answer (`serve` raises its own level).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except ConsentryError as exc:
        console.print(f"[red]error[/red] {exc.code}: {exc.detail}")
        raise SystemExit(2) from None
