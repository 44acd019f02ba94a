"""One `consentry demo`, start to end: the server (started here, or one already running),
the receivers, the configuration, the traffic with its live view, the closing summary and
the enrolment link; everything it started is stopped on the way out, Ctrl-C included."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from consentry.client import Client
from consentry.demo import display, run
from consentry.demo.receivers import Receiver
from consentry.demo.server import Enrolment, LocalServer, prepare
from consentry.demo.tally import Tally
from consentry.demo.traffic import Traffic

SYSTEM_IDS = ("eu_warehouse", "us_crm", "us_adtech")
DPO_EMAIL = "dpo@example.com"


@dataclass(frozen=True)
class Plan:
    """What the person asked for on the command line."""

    duration: float
    rate: float
    seed: int
    customers: int
    settle: float
    url: str | None
    key: str | None
    data_dir: Path
    stay: bool


@contextlib.contextmanager
def _receivers() -> Iterator[dict[str, Receiver]]:
    made: dict[str, Receiver] = {}
    try:
        for system_id in SYSTEM_IDS:
            made[system_id] = Receiver(system_id)
        yield made
    finally:
        for receiver in made.values():
            receiver.close()


@dataclass(frozen=True)
class Gateway:
    url: str
    key: str
    # With a server of its own: the server, and the enrolment of its first person.
    server: LocalServer | None = None
    enrolment: Enrolment | None = None


@contextlib.contextmanager
def _gateway(plan: Plan, environ: Mapping[str, str], console: Console) -> Iterator[Gateway]:
    if plan.url is not None:
        yield Gateway(plan.url.rstrip("/"), plan.key or "")
        return
    prepare(plan.data_dir)
    server = LocalServer(plan.data_dir, environ)
    enrolment: Enrolment | None = None
    try:
        console.print(f"Starting consentry serve (data: {server.data_dir}) ...", markup=False)
        key = server.start()
        enrolment = server.enrol(DPO_EMAIL)
        yield Gateway(server.url, key, server, enrolment)
    finally:
        if enrolment is not None:
            enrolment.stop()
        server.stop()


def execute(plan: Plan, environ: Mapping[str, str], console: Console) -> None:
    """Run the demo; raises DemoError (said without a traceback) or KeyboardInterrupt (after
    stopping everything)."""
    # With a server of its own the store is new, so the ids of a seed are new to it; a running
    # server may have seen them, so its runs take ids of their own.
    run_tag = f"demo{plan.seed}" if plan.url is None else f"demo{plan.seed}-{int(time.time())}"
    traffic = Traffic(plan.seed, plan.customers, run=run_tag)
    tally = Tally()
    options = run.Options(plan.duration, plan.rate, plan.settle)
    with (
        _gateway(plan, environ, console) as gateway,
        _receivers() as receivers,
        Client(gateway.url, gateway.key) as client,
    ):
        url, key = gateway.url, gateway.key
        console.print(f"Consentry on {url}: configuring purposes, schemas, systems", markup=False)
        run.configure(client, receivers)
        poller = run.Poller(url, key, list(SYSTEM_IDS), tally)
        view = display.Display(console, tally, receivers, f"consentry demo · {url}")
        performer: run.Stream | None = None
        try:
            poller.start()
            view.start()
            tally.phase = "streaming"
            view.say(
                f"Streaming {plan.rate:g} events/s for {plan.duration:g} s from "
                f"{plan.customers:,} customers (seed {plan.seed})"
            )
            started = run.now()

            def halfway() -> None:
                tally.incident = run.incident(client, started, "us_crm")
                view.say(f"Incident recorded: {tally.incident['incident_id']}")

            with client.events.batcher(
                max_events=250, max_seconds=0.5, on_results=tally.results
            ) as batcher:
                performer = run.Stream(client, batcher, tally)
                run.stream(traffic.actions(), performer, options, halfway)
            tally.phase = "settling"
            run.settle(client, performer.erasures, poller, plan.settle)
        finally:
            tally.phase = "stopped"
            view.close()
            poller.close()
        summary = client.compliance.summary()
        for line in display.summary_lines(summary):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        _closing(console, gateway)
        if plan.stay and gateway.server is not None:
            console.print("The server stays up until Ctrl-C.", markup=False)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()


def _closing(console: Console, gateway: Gateway) -> None:
    lines = [f"Dashboard: {gateway.url}/dashboard"]
    if gateway.server is not None and gateway.enrolment is not None:
        server = gateway.server
        lines += [
            f"Enrolment link for {DPO_EMAIL} (role dpo; once, valid 24 hours):",
            f"  {gateway.enrolment.link()}",
            f"Data: {server.data_dir} (look again later: CONSENTRY_DATA_DIR={server.data_dir} "
            f"consentry serve --port {server.port})",
        ]
    else:
        lines.append(
            f"A person for the dashboard: consentry user create --role dpo --email {DPO_EMAIL}"
            " (run where the server's store is)"
        )
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
