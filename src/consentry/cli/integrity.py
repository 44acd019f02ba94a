"""`consentry audit` and `consentry keys`: verify the log, read its head, rotate the keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.audit.verify import verify_now
from consentry.cli.common import CLI_ACTOR, audit_app, console, rotate_app, store_settings
from consentry.keys.ring import REFRESH_SECONDS
from consentry.keys.rotation import GRACE_SECONDS, MasterRotation, rotate_signing
from consentry.runtime import Runtime


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="FILE", help="A head printed earlier by `audit checkpoint` (repeatable)."
        ),
    ] = None,
) -> None:
    """Recompute every entry's leaf hash and the tree; check every signed head.

    Exits 0 with a summary, or 1 naming the first entry or head that does not match.
    """
    heads = [_read_checkpoint(path) for path in checkpoint or []]
    runtime = Runtime(store_settings())
    try:
        report, unaudited = verify_now(
            runtime.store, runtime.signing_keys, actor=CLI_ACTOR, checkpoints=heads
        )
    finally:
        runtime.close()
    _warn_unaudited(unaudited)
    if report.ok:
        typer.echo(f"ok: {report.summary()}")
        return
    typer.echo(f"FAILED: {report.problems[0]}")
    for problem in report.problems[1:]:
        typer.echo(f"  also {problem}")
    typer.echo(f"({report.summary()})")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Print the latest signed tree head as one JSON line (signing one if the log has grown),
    to publish elsewhere; `audit verify --checkpoint FILE` holds the log to it later."""
    runtime = Runtime(store_settings())
    try:
        head = runtime.heads.sign_now()
        unaudited = audit.record_read(
            runtime.store, AuditAction.AUDIT_HEAD_READ, actor=CLI_ACTOR, details={"size": head.size}
        )
    finally:
        runtime.close()
    _warn_unaudited(unaudited)
    typer.echo(json.dumps(head.as_json(), sort_keys=True, separators=(",", ":")))


@rotate_app.command("master")
def keys_rotate_master(
    batch: Annotated[
        int, typer.Option(metavar="N", min=1, max=100_000, help="Rows per transaction.")
    ] = 2_000,
    settle: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=0,
            help="Seconds to let running processes take up the new key before the old one is "
            "retired.",
        ),
    ] = REFRESH_SECONDS * 1.5,
    grace: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=0,
            help="Seconds an old key nothing is wrapped under is kept before a later run "
            "destroys it (longer than any transaction).",
        ),
    ] = GRACE_SECONDS,
) -> None:
    """Re-wrap every subject key, named secret, signing key and stored secret under a new
    key-encryption key, online, then retire the old key: marked retiring first, destroyed by
    a run once the grace period has passed. Run it again to resume one that was stopped."""
    runtime = Runtime(store_settings())
    try:
        rotation = MasterRotation(
            runtime.store,
            runtime.kek,
            actor=CLI_ACTOR,
            batch=batch,
            settle_seconds=settle,
            grace_seconds=grace,
        )
        kek_id = rotation.start()
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("re-wrapping under the new key", total=rotation.pending())
            outcome = rotation.finish(lambda done: bar.advance(task, done))
    finally:
        runtime.close()
    for kept in outcome.kept:
        console.print(
            f"[yellow]note[/yellow] nothing is wrapped under {kept} any more: remove that key "
            "from CONSENTRY_MASTER_KEY"
        )
    for retiring in outcome.retiring:
        console.print(
            f"[yellow]note[/yellow] {retiring} is retiring: run `consentry keys rotate master` "
            f"again after {grace:g} seconds to destroy it"
        )
    typer.echo(
        json.dumps(
            {
                "kek_id": kek_id,
                "rewrapped": outcome.rewrapped,
                "retired": list(outcome.retired) + list(outcome.kept),
                "retiring": list(outcome.retiring),
            },
            sort_keys=True,
        )
    )


@rotate_app.command("signing")
def keys_rotate_signing() -> None:
    """Make a new active signing key; earlier keys stay in the JWKS, so tokens and signed heads
    made with them keep verifying."""
    runtime = Runtime(store_settings())
    try:
        with runtime.store.write() as conn:
            kid = rotate_signing(conn, runtime.signing_keys, actor=CLI_ACTOR)
    finally:
        runtime.close()
    typer.echo(json.dumps({"kid": kid}))


def _warn_unaudited(code: str | None) -> None:
    if code:
        console.print(f"[yellow]warning[/yellow] this read was not audited: {code}")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path} is not a JSON tree head") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{path} is not a JSON tree head")
    return value
