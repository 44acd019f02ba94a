"""The demo's run against a gateway, all through the Python client: register the
configuration, stream the traffic at a target rate (an incident recorded halfway), then let
erasures and deliveries finish, watching the server's own figures meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from consentry.client import Client, ConsentryAPIError, ConsentryClientError, EventBatcher
from consentry.client.types import Verification
from consentry.demo import catalogue
from consentry.demo.receivers import Receiver
from consentry.demo.server import DemoError
from consentry.demo.tally import Tally
from consentry.demo.traffic import Action, Consent, Request, Send, Withdraw

# Verification the demo's operator records: erasure needs `high` (API.md).
VERIFIED: Verification = {"method": "id_document", "level": "high"}
# How often the server's figures are read for the display.
POLL_SECONDS = 1.0
# Slices the second is paced in.
TICK_SECONDS = 0.05


@dataclass(frozen=True)
class Options:
    duration: float
    rate: float
    settle: float


def now() -> datetime:
    return datetime.now(UTC)


def configure(client: Client, receivers: Mapping[str, Receiver]) -> None:
    """Purposes, the notice, the schemas, the vendor register and the data map, pointing at
    `receivers`."""
    for key, purpose in catalogue.PURPOSES.items():
        client.purposes.put(key, purpose)
    client.notices.put(
        catalogue.NOTICE_ID,
        version=catalogue.NOTICE_VERSION,
        text=catalogue.NOTICE_TEXT,
        purposes=catalogue.NOTICE_PURPOSES,
    )
    for event_type, schema in catalogue.SCHEMAS.items():
        client.schemas.put(event_type, **schema)
    for vendor_id, vendor in catalogue.vendors(now().date()).items():
        client.vendors.put(vendor_id, vendor)
    endpoints = {system_id: r.url for system_id, r in receivers.items()}
    for system_id, system in catalogue.systems(endpoints, now().date()).items():
        try:
            answer = client.systems.put(system_id, system)
        except ConsentryAPIError as exc:
            if exc.code == "endpoint_not_allowed":
                raise DemoError(
                    "the server refuses loopback receivers: start it with "
                    "CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1"
                ) from None
            raise
        secret = answer.get("signing_secret")
        if isinstance(secret, str):
            receivers[system_id].secret = secret.encode()


class Poller:
    """Reads the compliance summary and each system's delivery figures every second, into
    the tally, on a thread of its own (with its own connection)."""

    def __init__(self, url: str, key: str, system_ids: list[str], tally: Tally) -> None:
        self._client = Client(url, key, timeout=10)
        self._system_ids = system_ids
        self._tally = tally
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poll(self) -> None:
        summary = dict(self._client.compliance.summary())
        systems = {s: dict(self._client.systems.get(s)) for s in self._system_ids}
        self._tally.observed(summary, systems)

    def pending(self) -> int:
        """Deliveries waiting, as the latest poll found them."""
        return int(self._tally.server.get("deliveries", {}).get("pending", 0))

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except ConsentryClientError:
                continue  # a slow answer under load: the next poll catches up

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._client.close()


class Stream:
    """Performs the traffic's actions: events through the batcher, consent choices,
    opt-outs and requests as single calls (each counted in the tally)."""

    def __init__(self, client: Client, batcher: EventBatcher, tally: Tally) -> None:
        self.client = client
        self.batcher = batcher
        self.tally = tally
        self.erasures: list[str] = []

    def perform(self, action: Action) -> None:
        try:
            self._perform(action)
        except ConsentryAPIError as exc:
            self.tally.count("api_refusals", exc.code)

    def _perform(self, action: Action) -> None:
        match action:
            case Send(event):
                self.batcher.add(event | {"occurred_at": now()})
                self.tally.sent_one()
            case Consent(subject, purposes, source, jurisdiction, gpc):
                answer = self.client.consents.grant(
                    subject,
                    purposes,
                    notice=(catalogue.NOTICE_ID, catalogue.NOTICE_VERSION),
                    jurisdiction=jurisdiction,
                    source=source,
                    gpc=gpc or None,
                )
                self.tally.count("consents", "choices")
                if answer.get("gpc_honored"):
                    self.tally.count("consents", "gpc_honoured")
            case Withdraw(subject, purposes):
                self.client.consents.withdraw(subject, purposes)
                self.tally.count("consents", "opt_outs")
            case Request(kind, subject, jurisdiction):
                created = self.client.requests.create(
                    kind, subject, jurisdiction=jurisdiction, verification=VERIFIED
                )
                self.tally.count("requests", kind)
                if kind == "erasure":
                    self.erasures.append(created["request_id"])


def incident(client: Client, started: datetime, system_id: str) -> dict[str, Any]:
    """A breach recorded mid-stream: a CRM export sent to the wrong team."""
    at = now()
    return dict(
        client.incidents.create(
            {
                "detected_at": (at - timedelta(minutes=10)).isoformat(),
                "aware_at": (at - timedelta(minutes=1)).isoformat(),
                "description": "Demo: a CRM export was e-mailed to the wrong internal team.",
                "nature": "confidentiality",
                "data_categories": ["user.contact"],
                "risk": "risk",
                "systems": [system_id],
                "window": {"from": started.isoformat(), "to": at.isoformat()},
                "keys_compromised": False,
                "facts": "One export of contact details reached 12 staff outside the team.",
                "likely_consequences": "Low: staff under confidentiality obligations.",
                "measures": "Export deleted by every recipient; access narrowed.",
                "dpo_contact": "dpo@example.com",
            }
        )
    )


def stream(
    actions: Iterator[Action],
    performer: Stream,
    options: Options,
    on_halfway: Callable[[], None],
) -> None:
    """Send events at `options.rate` a second for `options.duration` seconds, with the other
    actions interleaved as they come; `on_halfway` runs once, halfway."""
    tally = performer.tally
    tally.restart_clock()
    events = 0
    halfway_done = False
    while (elapsed := tally.elapsed()) < options.duration:
        if not halfway_done and elapsed >= options.duration / 2:
            halfway_done = True
            on_halfway()
        owed = int(elapsed * options.rate) - events
        if owed <= 0:
            time.sleep(TICK_SECONDS)
            continue
        # At most a tick's worth at once, so a slow call never turns into a burst.
        for _ in range(min(owed, max(1, int(options.rate * TICK_SECONDS)))):
            action = next(actions)
            while not isinstance(action, Send):
                performer.perform(action)
                action = next(actions)
            performer.perform(action)
            events += 1


def settle(client: Client, erasures: list[str], poller: Poller, seconds: float) -> None:
    """Wait (up to `seconds`) until every erasure asked has completed and no delivery waits
    any more."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        statuses = [client.requests.get(r)["status"] for r in erasures]
        poller.poll()
        finished = all(s in {"completed", "rejected", "failed"} for s in statuses)
        if finished and poller.pending() == 0:
            return
        time.sleep(0.5)
