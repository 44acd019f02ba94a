"""What the demo shows: a Rich live panel on a terminal, plain progress lines otherwise, and
the closing summary (read from the server's compliance summary)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from consentry.demo.receivers import Receiver
from consentry.demo.tally import Tally

PLAIN_EVERY_SECONDS = 5.0
BLOCKING = ("transfer_blocked", "dpa_missing", "sale_opted_out", "tcf_vendor_no_consent")


def _codes(counts: Mapping[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{code} {n:,}" for code, n in ordered) or "none"


def _requests(tally: Tally) -> str:
    completed = tally.server.get("requests", {}).get("completed", {})
    kinds = sorted(set(tally.requests) | {"erasure"})
    return ", ".join(
        f"{kind} {tally.requests[kind]} asked / {completed.get(kind, 0)} completed"
        for kind in kinds
    )


def _system_line(system_id: str, receiver: Receiver, figures: Mapping[str, Any]) -> str:
    delivery = figures.get("delivery", {})
    refused = delivery.get("refused", {})
    notices = ", ".join(f"{t} {n}" for t, n in sorted(receiver.notices.items()))
    parts = [f"{receiver.events:,} events received"]
    if notices:
        parts.append(f"notices: {notices}")
    if delivery.get("pending"):
        parts.append(f"{delivery['pending']:,} pending")
    if refused:
        parts.append("not sent: " + _codes(refused))
    return f"{system_id}: " + "; ".join(parts)


def panel(tally: Tally, receivers: Mapping[str, Receiver], title: str) -> RenderableType:
    """The live view."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    refused = sum(tally.refused.values())
    grid.add_row(
        "events",
        f"{tally.sent:,} sent, {tally.rate():,.0f}/s; accepted {tally.accepted:,}, "
        f"refused {refused:,}",
    )
    grid.add_row("refused by code", _codes(tally.refused))
    grid.add_row(
        "consent",
        f"{tally.consents['choices']:,} choices recorded (GPC honoured "
        f"{tally.consents['gpc_honoured']:,}), {tally.consents['opt_outs']:,} opt-outs",
    )
    grid.add_row("requests", _requests(tally))
    for system_id, receiver in receivers.items():
        grid.add_row(
            "deliveries" if system_id == next(iter(receivers)) else "",
            _system_line(system_id, receiver, tally.systems.get(system_id, {})),
        )
    if tally.incident is not None:
        grid.add_row(
            "incident",
            f"{tally.incident['incident_id']} recorded; authority notice due "
            f"{tally.incident.get('authority_due_at')}",
        )
    grid.add_row("processed without consent", str(tally.server.get("processed_without_consent", 0)))
    heading = Text(f"{tally.phase} · {tally.elapsed():.0f} s", style="dim")
    return Panel(Group(heading, grid), title=title, title_align="left")


def plain_line(tally: Tally, receivers: Mapping[str, Receiver]) -> str:
    """One progress line, for a log or a pipe."""
    delivered = sum(r.events for r in receivers.values())
    blocked = sum(
        n
        for figures in tally.systems.values()
        for reason, n in figures.get("delivery", {}).get("refused", {}).items()
        if reason in BLOCKING
    )
    return (
        f"[{tally.elapsed():5.0f} s] {tally.phase}: {tally.sent:,} events sent "
        f"({tally.rate():,.0f}/s), accepted {tally.accepted:,}, refused "
        f"{sum(tally.refused.values()):,} ({_codes(tally.refused)}); delivered {delivered:,}, "
        f"not sent {blocked:,}; requests: {_requests(tally)}"
    )


class Display:
    """The live panel (a terminal) or a plain line every 5 s (anything else), until
    `close`."""

    def __init__(
        self, console: Console, tally: Tally, receivers: Mapping[str, Receiver], title: str
    ) -> None:
        self.console = console
        self.tally = tally
        self.receivers = receivers
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if console.is_terminal:
            self._live = Live(
                console=console,
                refresh_per_second=4,
                get_renderable=lambda: panel(tally, receivers, title),
            )
        else:
            self._thread = threading.Thread(target=self._lines, name="demo-lines", daemon=True)

    def start(self) -> None:
        if self._live is not None:
            self._live.start()
        elif self._thread is not None:
            self._thread.start()

    def say(self, text: str) -> None:
        """A line above the live view (or among the progress lines)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _lines(self) -> None:
        while not self._stop.wait(PLAIN_EVERY_SECONDS):
            self.say(plain_line(self.tally, self.receivers))

    def close(self) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
            self.say(plain_line(self.tally, self.receivers))


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The closing summary, from `GET /v1/compliance/summary`."""
    events = summary.get("events", {})
    refused: Mapping[str, int] = events.get("rejected", {})
    deliveries = summary.get("deliveries", {})
    not_sent: Mapping[str, int] = deliveries.get("refused", {})
    requests = summary.get("requests", {})
    completed: Mapping[str, int] = requests.get("completed", {})
    incidents = summary.get("incidents", {})
    return [
        "Summary (GET /v1/compliance/summary):",
        f"  events accepted:            {events.get('accepted', 0):,}",
        f"  refusals:                   {sum(refused.values()):,} ({_codes(refused)})",
        f"  blocked transfers:          {not_sent.get('transfer_blocked', 0):,} events "
        f"(deliveries not sent: {_codes(not_sent)})",
        f"  erasures completed:         {completed.get('erasure', 0):,} "
        f"(requests completed: {_codes(completed)}; open {requests.get('open', 0)})",
        f"  incidents open:             {incidents.get('open', 0)} "
        f"(next authority deadline {incidents.get('next_deadline')})",
        f"  processed_without_consent:  {summary.get('processed_without_consent', 0)}",
    ]
