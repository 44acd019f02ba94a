"""`consentry export-config`, `consentry apply` and `consentry evaluate`: the configuration as
files (privacy as code), read from and written to the store this command opens, as the other
admin commands do; evaluated without one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from consentry import clock
from consentry.cli import configfiles, evaluation
from consentry.cli.common import app, env_settings, store_settings
from consentry.errors import InvalidConfigFile
from consentry.governance.models import Region
from consentry.runtime import Runtime


@app.command("export-config")
def export_config(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to write the files (made if missing).")
    ],
) -> None:
    """Write purposes, notices, schemas, vendors and systems as YAML, one file per kind (never a
    system's signing secret)."""
    runtime = Runtime(store_settings())
    try:
        written = configfiles.export(runtime, directory)
    finally:
        runtime.close()
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("apply")
def apply_config(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The files `export-config` writes.")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Make the changes (without it: the plan only).")
    ] = False,
) -> None:
    """Make the configuration equal to the files: print the plan (create, change, refuse with
    the reason, keep what the files lack: nothing is deleted); with --yes make it, all or
    nothing. Exits 1 when anything is refused (then nothing is changed)."""
    runtime = Runtime(store_settings())
    try:
        plan = configfiles.apply(runtime, directory, commit=yes)
    except InvalidConfigFile as error:
        # As main() ends every command on a domain error (also under a test's runner).
        typer.echo(f"error {error.code}: {error.detail}", err=True)
        raise typer.Exit(2) from None
    finally:
        runtime.close()
    for step in plan.steps:
        line = f"{step.action:<7} {step.kind:<8} {step.item}"
        typer.echo(f"{line}  ({step.reason})" if step.reason else line)
    typer.echo(
        f"{plan.count('create')} to create, {plan.count('change')} to change, "
        f"{len(plan.refused)} refused, {plan.count('keep')} kept (not in the files), "
        f"{plan.unchanged} unchanged."
    )
    if plan.refused:
        typer.echo("Refused: nothing was changed. Fix the files, or the server, and run again.")
        raise typer.Exit(1)
    if not plan.applied:
        typer.echo("Nothing was changed: run again with --yes to make these changes.")
        return
    typer.echo("Applied.")
    for system_id, secret in sorted(plan.secrets.items()):
        typer.echo(f"Signing secret of system {system_id} (shown once): {secret}")


@app.command("evaluate")
def evaluate_config(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The files `export-config` writes.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the violations as one JSON object.")
    ] = False,
) -> None:
    """Check the files without a server: print every violation (code, file, path, rule) and
    exit 1 when there is one, 0 when there is none, 2 when a file cannot be read. For CI."""
    settings = env_settings()
    try:
        found = evaluation.evaluate(directory, Region(settings.exporter), clock.now().date())
    except InvalidConfigFile as error:
        typer.echo(f"error {error.code}: {error.detail}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(evaluation.as_json(found), indent=2))
    else:
        for v in found:
            typer.echo(f"{v.file}: {v.path}  {v.code}\n    {v.rule}")
        typer.echo(f"{len(found)} violation(s)." if found else "No violations.")
    if found:
        raise typer.Exit(1)
