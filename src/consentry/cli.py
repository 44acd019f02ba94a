"""`consentry`: the command line (serve, settings, api-key, ...)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from consentry import clock
from consentry import workers as worker_processes
from consentry.app import create_app
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.audit.verify import verify_now
from consentry.auth import api_keys
from consentry.auth.models import Role
from consentry.auth.origins import development
from consentry.bench import harness
from consentry.client import ConsentryClientError
from consentry.delivery.worker import resend
from consentry.demo import session as demo_session
from consentry.demo.server import DemoError
from consentry.errors import ConsentryError
from consentry.governance.retention import Progress as SweepProgress
from consentry.http.protocol import protocol_class
from consentry.keys.ring import REFRESH_SECONDS
from consentry.keys.rotation import GRACE_SECONDS, MasterRotation, rotate_signing
from consentry.keys.sources import write_private_file
from consentry.people.models import PersonRole
from consentry.runtime import Runtime, tune_gc
from consentry.settings import Settings
from consentry.stream import replica as stream_replica


def _group(help_text: str) -> typer.Typer:
    # Plain help, as click writes it: Typer's panels print a type beside every flag
    # (`--quick <bool>`, `--help <bool>`), which says nothing a reader needs.
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


app = _group("Consentry: consent-aware privacy gateway.")
api_key_app = _group("Create, list and revoke API keys.")
app.add_typer(api_key_app, name="api-key")
identity_secret_app = _group(
    "Secrets a site vouches for its visitors' customer_id with (browser keys' identity_proof)."
)
app.add_typer(identity_secret_app, name="identity-secret")
delivery_app = _group("Downstream deliveries: resend dead letters.")
app.add_typer(delivery_app, name="delivery")
audit_app = _group("Verify the audit log; print its latest signed head.")
app.add_typer(audit_app, name="audit")
requests_app = _group("Data-subject requests: run a pass of the runner.")
app.add_typer(requests_app, name="requests")
retention_app = _group("Retention: sweep events whose retention ended.")
app.add_typer(retention_app, name="retention")
user_app = _group("People who sign in to the pages: create, list, disable.")
app.add_typer(user_app, name="user")
keys_app = _group("Key-encryption and signing keys.")
app.add_typer(keys_app, name="keys")
rotate_app = _group("Rotate the master key (KEK) or the signing key, online.")
keys_app.add_typer(rotate_app, name="rotate")

CLI_ACTOR = "cli"
ADMIN_KEY_FILE = "admin.key"
console = Console(stderr=True)


def _settings() -> Settings:
    return Settings.from_env(os.environ)


def _store_settings() -> Settings:
    """The settings of a command that opens the store, which makes the data directory."""
    settings = _settings()
    _hint_new_data_dir(settings)
    return settings


def _hint_new_data_dir(settings: Settings) -> None:
    # A command run from another directory would otherwise start an empty store there in
    # silence, and its keys and requests would seem lost.
    if "CONSENTRY_DATA_DIR" in os.environ or settings.data_dir.exists():
        return
    typer.echo(
        f"Note: CONSENTRY_DATA_DIR is not set: creating a new data directory, "
        f"{settings.data_dir.resolve()}. To use an existing store, set CONSENTRY_DATA_DIR "
        f"or run from the directory that holds it.",
        err=True,
    )


def _dev_admin_key(settings: Settings, **overrides: Any) -> tuple[Settings, str]:
    """The admin key to announce: CONSENTRY_ADMIN_KEY, or a development key kept in a 0600
    file in the data directory (made on first start); `overrides` as the command line set
    them."""
    if settings.admin_key:
        return settings, "the value of CONSENTRY_ADMIN_KEY"
    path = settings.data_dir / ADMIN_KEY_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(path, f"{api_keys.PREFIX}admin_{secrets.token_urlsafe(32)}\n")
    key = path.read_text().strip()
    return Settings.from_env(os.environ, admin_key=key, **overrides), key


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Listen address (CONSENTRY_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Listen port (CONSENTRY_PORT).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(metavar="N", help="Worker processes (CONSENTRY_WORKERS).", min=1, max=64),
    ] = None,
    ssl_certfile: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="Speak TLS with this PEM certificate (chain) (CONSENTRY_SSL_CERTFILE).",
        ),
    ] = None,
    ssl_keyfile: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="The certificate's unencrypted PEM private key (CONSENTRY_SSL_KEYFILE).",
        ),
    ] = None,
) -> None:
    """Start the gateway on uvicorn (TLS with --ssl-certfile and --ssl-keyfile)."""
    tls = {
        name: value
        for name, value in (("ssl_certfile", ssl_certfile), ("ssl_keyfile", ssl_keyfile))
        if value is not None
    }
    # The files are checked (readable, a certificate and its key) before anything starts.
    settings = Settings.from_env(os.environ, **tls)
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    # Before the banner and before the store opens: one server per port, whatever runs there.
    # The socket that checked holds the port from here on, through the migrations.
    try:
        sock = worker_processes.claim_port(host, port, shared=workers > 1)
    except OSError as exc:
        typer.echo(f"Cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    _hint_new_data_dir(settings)
    logging.getLogger("consentry").setLevel(settings.log_level.upper())
    settings, key_hint = _dev_admin_key(settings, **tls)
    base = f"{'https' if settings.ssl_certfile else 'http'}://{host}:{port}"
    # Plain lines, never wrapped, so the URLs and the key can be copied whole.
    typer.echo(f"Consentry on {base}  (data: {settings.data_dir.resolve()})")
    typer.echo(f"  API docs:  {base}/docs   (OpenAPI: {base}/openapi.json)")
    typer.echo(f"  Dashboard: {base}/dashboard")
    typer.echo("             (the first person: consentry user create --role dpo --email EMAIL)")
    typer.echo(f"  Portal:    {base}/portal")
    typer.echo(f"  Admin key: {key_hint}")
    typer.echo(f"  Try:       curl -H 'Authorization: Bearer <admin key>' {base}/v1/me")
    tune_gc()
    if workers == 1:
        config = uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            log_level=settings.log_level,
            http=protocol_class(settings.head_timeout_seconds),
            # X-Forwarded-Proto and -For are believed only with CONSENTRY_TRUST_PROXY (uvicorn
            # would believe any proxy on this machine by default).
            proxy_headers=settings.trust_proxy,
            ssl_certfile=settings.ssl_certfile or None,
            ssl_keyfile=settings.ssl_keyfile or None,
        )
        server = uvicorn.Server(config)
        # As uvicorn.run does, on the socket that claimed the port.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
        if not server.started:
            raise typer.Exit(worker_processes.STARTUP_FAILURE)
        return
    # Migrations, the key-encryption key and the signing key are made once, here, so that
    # workers starting together never race to create them.
    Runtime(settings).close()
    # Workers read their settings from the environment, with the key announced above and the
    # TLS files of the command line.
    os.environ["CONSENTRY_ADMIN_KEY"] = settings.admin_key
    os.environ["CONSENTRY_SSL_CERTFILE"] = settings.ssl_certfile
    os.environ["CONSENTRY_SSL_KEYFILE"] = settings.ssl_keyfile
    # Each worker writes its counters into this run's directory, made before any worker
    # starts; a scrape sums them. Removed when the run ends.
    metrics = _metrics_dir(settings)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    try:
        code = worker_processes.serve(sock, host, port, workers, settings.log_level)
    finally:
        shutil.rmtree(metrics, ignore_errors=True)
    if code:
        raise typer.Exit(code)


@app.command()
def stream() -> None:
    """Run a stream replica: consume consentry.raw on CONSENTRY_KAFKA_BROKERS, produce the
    consented and refused records exactly once."""
    settings = _store_settings()
    if not settings.kafka_brokers:
        typer.echo("consentry stream needs CONSENTRY_KAFKA_BROKERS (host:port,...)", err=True)
        raise typer.Exit(2)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("consentry").setLevel(settings.log_level.upper())
    tune_gc()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    runtime = Runtime(settings)
    try:
        typer.echo(f"Consentry stream replica on {settings.kafka_brokers}: consuming consentry.raw")
        stream_replica.run(runtime, stop)
    except stream_replica.StreamFailed as exc:
        typer.echo(f"consentry stream stopped: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()


def _metrics_dir(settings: Settings) -> Path:
    """This run's directory of counts, `<data dir>/metrics/<pid>`, empty (counts of an earlier
    run would be summed in). Another server on the same data directory keeps its own; those of
    runs whose process has ended are removed."""
    root = settings.data_dir / "metrics"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit() and not _running(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    path = root / str(os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def worker_app() -> FastAPI:
    """The app of one `consentry serve` worker process."""
    tune_gc()
    return create_app(_settings())


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes: under a minute.")] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", metavar="PATH", help="Write the figures to this file.")
    ] = None,
    section: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="Run only this section (repeatable).")
    ] = None,
) -> None:
    """Measure speed against the targets, on fictional data.

    Sections (--section): ingest, consent_check, http_ingest, opt_out, redaction (beside
    Presidio when the dev extra is installed), delivery, stream (one replica on a Kafka broker
    it starts; skipped without Java or the jars of `make kafka`), audit, query, erasure,
    retention, summary, web (the dashboard's and the portal's server time)."""
    results = harness.run(quick=quick, only=section)
    harness.show(results, Console())
    if json_path is not None:
        harness.write(results, json_path)


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option(metavar="SECONDS", help="How long traffic streams.", min=1)
    ] = 60,
    rate: Annotated[
        float, typer.Option(metavar="N", help="Events sent per second (a target).", min=1)
    ] = 200,
    seed: Annotated[
        int, typer.Option(metavar="N", help="The same seed, the same customers and sequence.")
    ] = 1,
    customers: Annotated[
        int, typer.Option(metavar="N", help="Fictional customers.", min=10, max=1_000_000)
    ] = 3000,
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Use this running server (with --key) instead of starting one; it must "
            "allow loopback receivers (CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1).",
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option(metavar="KEY", help="The admin key of the --url server.")
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            metavar="PATH",
            help="The demo server's data directory, emptied at start (only if a demo made it).",
        ),
    ] = Path("consentry-demo-data"),
    settle: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", help="At most this long, after streaming, for erasures to finish."
        ),
    ] = 30,
    stay: Annotated[
        bool | None,
        typer.Option(
            "--stay/--no-stay",
            help="Keep the demo's server up after the summary, until Ctrl-C (default: on a "
            "terminal).",
        ),
    ] = None,
) -> None:
    """Start a gateway with downstream systems and stream simulated contact-centre and web
    traffic through it; show what is accepted, refused, delivered and blocked, then a
    summary, the dashboard and an enrolment link."""
    if url is not None and not key:
        raise typer.BadParameter("--url needs --key (an admin key of that server)")
    out = Console()
    plan = demo_session.Plan(
        duration=duration,
        rate=rate,
        seed=seed,
        customers=customers,
        settle=settle,
        url=url,
        key=key,
        data_dir=data_dir,
        stay=out.is_terminal if stay is None else stay,
    )
    # A `kill` ends the demo as Ctrl-C does: the server and the receivers are stopped first.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo_session.execute(plan, os.environ, out)
    except DemoError as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except ConsentryClientError as exc:
        console.print(f"[red]error[/red] the server answered {exc.code}: {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("Stopped.")
        raise typer.Exit(130) from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command("settings")
def show_settings() -> None:
    """Show every setting: its value (secrets redacted) and what it does."""
    table = Table("variable", "value", "description")
    for name, value, description in _settings().described():
        table.add_row(name, value, description)
    Console().print(table)


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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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
    runtime = Runtime(_store_settings())
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


def main() -> None:
    """Entry point: domain errors end the command with their code, not a traceback."""
    # Warnings only: a command's output is its answer (`serve` raises its own level).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except ConsentryError as exc:
        console.print(f"[red]error[/red] {exc.code}: {exc.detail}")
        raise SystemExit(2) from None
