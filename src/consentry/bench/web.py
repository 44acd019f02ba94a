"""The benchmark's pages section: the server time of the dashboard's first paint (GET
/dashboard, signed in) and of a customer's portal page (GET /portal, in a session), over the
summary section's store (100,000 subjects and 1,000,000 events in full), through the ASGI app
on loopback."""

from __future__ import annotations

import statistics
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from fastapi.testclient import TestClient

from consentry import clock
from consentry.app import create_app
from consentry.bench import summary as summary_section
from consentry.bench.data import World
from consentry.dsr.entry import Entry, PortalEntry
from consentry.people import sessions
from consentry.people.models import PersonRole
from consentry.storage import compliance as compliance_sql
from consentry.web import portal, staff

RUNS = 9


def web(world: World, subjects: int, events: int) -> dict[str, Any]:
    rt = world.runtime
    with rt.store.read() as conn:
        present = compliance_sql.subject_count(conn)
    if present < subjects:
        summary_section._load(world, subjects, events)
    made = rt.people.create("bench-dpo@example.com", PersonRole.DPO, actor="bench")
    link = parse_qs(urlsplit(made.url).query)["token"][0]
    setup = rt.people.set_password(link, "a passphrase for the benchmark")
    rt.people.confirm_totp(link, pyotp.TOTP(setup.secret).now())
    with rt.store.write() as conn:
        signed = sessions.open_session(conn, made.person_id, PersonRole.DPO)
    customer = world.subject_ids[0]
    token, _ = rt.portal_sessions.open(PortalEntry(customer, None, clock.now()), Entry.MINTED_LINK)
    app = create_app(world.settings)
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 9)) as client:
        dashboard_first, dashboard = _timed(
            client, "/dashboard", f"{staff.COOKIE}={signed.token}", "Compliance dashboard"
        )
        portal_first, page = _timed(
            client, portal.PATH, f"{portal.COOKIE}={token}", "What you agreed to"
        )
    return {
        "subjects": max(present, subjects),
        "events": events,
        "dashboard_ms": round(statistics.median(dashboard), 1),
        "dashboard_first_ms": round(dashboard_first, 1),
        "dashboard_max_ms": round(max(dashboard), 1),
        "portal_ms": round(statistics.median(page), 1),
        "portal_first_ms": round(portal_first, 1),
        "portal_max_ms": round(max(page), 1),
    }


def _timed(client: TestClient, path: str, cookie: str, heading: str) -> tuple[float, list[float]]:
    """Milliseconds of the first request (caches cold), and of each of RUNS more."""
    started = time.perf_counter()
    resp = client.get(path, headers={"Cookie": cookie}, follow_redirects=False)
    first = (time.perf_counter() - started) * 1000
    if resp.status_code != 200 or heading not in resp.text:
        raise RuntimeError(f"{path} answered {resp.status_code} without {heading!r}")
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        resp = client.get(path, headers={"Cookie": cookie}, follow_redirects=False)
        timings.append((time.perf_counter() - started) * 1000)
        if resp.status_code != 200:
            raise RuntimeError(f"{path} answered {resp.status_code}")
    return first, timings
