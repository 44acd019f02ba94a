"""The commands that manage the store: API keys, identity secrets, people, deliveries, requests
and retention."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from consentry import clock
from consentry.auth import api_keys
from consentry.auth.models import Role
from consentry.auth.origins import development
from consentry.cli.common import (
    CLI_ACTOR,
    api_key_app,
    console,
    delivery_app,
    identity_secret_app,
    requests_app,
    retention_app,
    store_settings,
    user_app,
)
from consentry.delivery.worker import resend
from consentry.errors import ConsentryError
from consentry.governance.retention import Progress as SweepProgress
from consentry.people.models import PersonRole
from consentry.runtime import Runtime


@api_key_app.command("create")
def api_key_create(
    role: Annotated[Role, typer.Option(help="The key's role.")],
    label: Annotated[
        str, typer.Option(metavar="TEXT", help="A note saying who holds the key.")
    ] = "",
    origin: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ORIGIN",
            help="A web origin a browser key is honoured from (repeat for more): "
            "https://host[:port]; http only for localhost, 127.0.0.1 and [::1] (development).",
        ),
    ] = None,
) -> None:
    """Mint an API key; it is printed alone on the last line, and only this once."""
    runtime = Runtime(store_settings())
    try:
        with runtime.store.write() as conn:
            record, key = api_keys.create(conn, role, label, actor=CLI_ACTOR, origins=origin or [])
    except ConsentryError as error:
        typer.echo(f"{error.code}: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    if record.role is Role.BROWSER:
        typer.echo(f"Origins: {', '.join(record.origins)}")
        if any(development(o) for o in record.origins):
            typer.echo("Note: http:// origins are for development on this machine only.", err=True)
        typer.echo(
            f"Created publishable key {record.key_id} (a page sends it as X-Consentry-Key; "
            "it is not a secret):"
        )
    else:
        typer.echo(f"Created API key {record.key_id} with role {record.role} (shown once):")
    typer.echo(key)


@api_key_app.command("list")
def api_key_list() -> None:
    """List API keys (ids, roles, labels; never the keys)."""
    runtime = Runtime(store_settings())
    try:
        with runtime.store.read() as conn:
            keys = api_keys.list_keys(conn, after=None, limit=100_000)
    finally:
        runtime.close()
    table = Table("key_id", "role", "label", "created_at", "revoked_at")
    for k in keys:
        revoked = clock.rfc3339(k.revoked_at) if k.revoked_at else ""
        table.add_row(k.key_id, k.role.value, k.label, clock.rfc3339(k.created_at), revoked)
    Console().print(table)


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id.")],
) -> None:
    """Revoke an API key at once."""
    runtime = Runtime(store_settings())
    try:
        with runtime.store.write() as conn:
            record = api_keys.revoke(conn, key_id, actor=CLI_ACTOR)
    finally:
        runtime.close()
    typer.echo(f"Revoked API key {record.key_id}")


@identity_secret_app.command("create")
def identity_secret_create(
    label: Annotated[
        str, typer.Option(metavar="TEXT", help="A note saying which site holds the secret.")
    ] = "",
) -> None:
    """Mint an identity secret; it is printed alone on the last line, and only this once. The
    site's server computes identity_proof = HMAC-SHA256 hex of customer_id + "." + expires_at
    under it."""
    runtime = Runtime(store_settings())
    try:
        with runtime.store.write() as conn:
            record, secret = runtime.identity_secrets.create(conn, label, actor=CLI_ACTOR)
    except ConsentryError as error:
        typer.echo(f"{error.code}: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(f"Created identity secret {record.secret_id} (keep it on the server; shown once):")
    typer.echo(secret)


@identity_secret_app.command("list")
def identity_secret_list() -> None:
    """List identity secrets (ids, labels, when created and revoked; never the secrets)."""
    runtime = Runtime(store_settings())
    try:
        with runtime.store.read() as conn:
            found = runtime.identity_secrets.list(conn)
    finally:
        runtime.close()
    table = Table("secret_id", "label", "created_at", "revoked_at")
    for s in found:
        revoked = clock.rfc3339(s.revoked_at) if s.revoked_at else ""
        table.add_row(s.secret_id, s.label, clock.rfc3339(s.created_at), revoked)
    Console().print(table)


@identity_secret_app.command("revoke")
def identity_secret_revoke(
    secret_id: Annotated[str, typer.Argument(metavar="SECRET_ID", help="The secret's id.")],
) -> None:
    """Revoke an identity secret: proofs made under it are refused from then on."""
    runtime = Runtime(store_settings())
    try:
        with runtime.store.write() as conn:
            record = runtime.identity_secrets.revoke(conn, secret_id, actor=CLI_ACTOR)
    except ConsentryError as error:
        typer.echo(f"{error.code}: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(f"Revoked identity secret {record.secret_id}")


@user_app.command("create")
def user_create(
    role: Annotated[PersonRole, typer.Option(help="What the person may do on the pages.")],
    email: Annotated[str, typer.Option(metavar="EMAIL", help="The person's e-mail address.")],
) -> None:
    """Create an account and print its one-time enrolment link (valid 24 hours), where the
    person sets a password and a TOTP second factor."""
    runtime = Runtime(store_settings())
    try:
        enrolment = runtime.people.create(email, role, actor=CLI_ACTOR)
    finally:
        runtime.close()
    typer.echo(f"Created {enrolment.person_id} with role {role.value}.")
    typer.echo(f"Enrolment link (valid until {clock.rfc3339(enrolment.expires_at)}, once):")
    typer.echo(enrolment.url)


@user_app.command("list")
def user_list() -> None:
    """List accounts: id, role, status, e-mail."""
    runtime = Runtime(store_settings())
    try:
        everyone = runtime.people.everyone()
    finally:
        runtime.close()
    table = Table("person_id", "role", "status", "email", "created_at")
    for person in everyone:
        table.add_row(
            person.person_id,
            person.role.value,
            person.status.value,
            person.email,
            clock.rfc3339(person.created_at),
        )
    Console().print(table)


@user_app.command("disable")
def user_disable(
    person_id: Annotated[
        str, typer.Option("--id", metavar="ID", help="The person's id, as `user list` shows it.")
    ],
) -> None:
    """Disable an account for good; its sessions end at once."""
    runtime = Runtime(store_settings())
    try:
        person = runtime.people.disable(person_id, actor=CLI_ACTOR)
    finally:
        runtime.close()
    typer.echo(f"Disabled {person.person_id}")


@delivery_app.command("resend")
def delivery_resend(
    system: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Only this system's dead letters (default: all)."),
    ] = None,
) -> None:
    """Send dead-lettered deliveries again from the first attempt (the worker picks them up)."""
    runtime = Runtime(store_settings())
    try:
        if system is not None:
            with runtime.store.read() as conn:
                runtime.datamap.get(conn, system)
        count = resend(runtime.store, system, actor=CLI_ACTOR)
    finally:
        runtime.close()
    typer.echo(f"Queued {count} dead-lettered deliveries again")


@requests_app.command("run")
def requests_run() -> None:
    """One pass of the request runner: overdue marks, each verified request's next steps,
    the withdrawal purge, consent expiry (what the server's background runner does every few
    seconds)."""
    runtime = Runtime(store_settings())
    try:
        done = runtime.runner.run_pending()
    finally:
        runtime.close()
    typer.echo(json.dumps(done, sort_keys=True))


@retention_app.command("sweep")
def retention_sweep() -> None:
    """Run a retention sweep to its end (or finish one a stopped process left): events whose
    retention ended for every purpose are deleted, others lose the purposes whose retention
    ended; restricted subjects are skipped. Prints what it deleted and narrowed."""
    runtime = Runtime(store_settings())
    try:
        with Progress(
            TextColumn("sweeping"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[deleted]} deleted, {task.fields[narrowed]} narrowed"),
            console=console,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task("sweep", total=None, deleted=0, narrowed=0)

            def show(at: SweepProgress) -> None:
                bar.update(
                    task,
                    total=max(at.until_seq, 1),
                    completed=at.after_seq,
                    deleted=at.counts["deleted"],
                    narrowed=at.counts["narrowed"],
                )

            done = runtime.retention.sweep(CLI_ACTOR, show)
            others = {name: step(CLI_ACTOR) for name, step in runtime.retention.steps[1:]}
    finally:
        runtime.close()
    counts = done.counts
    typer.echo(
        f"Retention sweep {done.sweep_id}: deleted {counts['deleted']} events, narrowed "
        f"{counts['narrowed']}, skipped {counts['skipped_restricted']} of restricted subjects"
    )
    for name, figures in others.items():
        typer.echo(f"{name}: " + ", ".join(f"{n} {what}" for what, n in sorted(figures.items())))
