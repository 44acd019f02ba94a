"""`consentry serve`, `stream`, `bench`, `demo` and `settings`: the commands that run something."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from consentry import workers as worker_processes
from consentry.app import create_app
from consentry.bench import harness
from consentry.cli.common import (
    app,
    console,
    dev_admin_key,
    env_settings,
    hint_new_data_dir,
    store_settings,
)
from consentry.client import ConsentryClientError
from consentry.demo import session as demo_session
from consentry.demo.server import DemoError
from consentry.http.protocol import protocol_class
from consentry.runtime import Runtime, tune_gc
from consentry.settings import Settings
from consentry.stream import replica as stream_replica


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
    hint_new_data_dir(settings)
    logging.getLogger("consentry").setLevel(settings.log_level.upper())
    settings, key_hint = dev_admin_key(settings, **tls)
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
    settings = store_settings()
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
    return create_app(env_settings())


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
def showenv_settings() -> None:
    """Show every setting: its value (secrets redacted) and what it does."""
    table = Table("variable", "value", "description")
    for name, value, description in env_settings().described():
        table.add_row(name, value, description)
    Console().print(table)
