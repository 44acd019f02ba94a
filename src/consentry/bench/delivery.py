"""The benchmark's delivery section: events delivered per second to one fast receiver on
loopback, and the delay from ingest to delivery with the worker running."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from consentry.bench.data import World, batches
from consentry.delivery.sinks import WebhookSink
from consentry.governance.datamap import parse

ROUTED = frozenset({"analytics", "personalization"})
SYSTEM: dict[str, Any] = {
    "name": "Bench receiver",
    "kind": "webhook",
    "purposes": sorted(ROUTED),
    "data_categories": ["system", "user"],
    "region": "EU",
    "transfer_mechanism": "none",
    "dpa_signed": True,
}


class _Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()


def _server(arrivals: _Arrivals) -> ThreadingHTTPServer:
    decoder = msgspec.json.Decoder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            now = time.monotonic()
            ids = [e["event_id"] for e in decoder.decode(body)["events"]]
            with arrivals.lock:
                for event_id in ids:
                    arrivals.at.setdefault(event_id, now)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def delivery(world: World, n_batches: int, seconds: float) -> dict[str, Any]:
    """Throughput: a filled outbox drained by the worker. Delay: batches of 100 ingested
    every 20 ms while the worker runs; each event's time from the start of its ingest call to
    its arrival at the receiver."""
    rt = world.runtime
    arrivals = _Arrivals()
    server = _server(arrivals)
    url = f"http://127.0.0.1:{server.server_address[1]}/events"
    with rt.store.write() as conn:
        system = parse("bench_sink", SYSTEM | {"endpoint": url}, rt.purposes.all(conn))
        rt.datamap.put(conn, system, actor="bench")
    worker = rt.delivery_worker(WebhookSink(10.0))
    try:
        bodies = batches(world, n_batches, 1000, "dlv")
        for body in bodies:
            rt.pipeline.ingest(body, actor="bench")
        with rt.store.read() as conn:
            queued, _ = rt.outbox.counts(conn, "bench_sink")
        started = time.perf_counter()
        delivered = 0
        while delivered < queued:
            n = worker.deliver("bench_sink")
            if n == 0:
                break
            delivered += n
        rate = delivered / (time.perf_counter() - started)

        worker.start()
        sent: dict[str, float] = {}
        stream = batches(world, max(1, int(seconds / 0.02)), 100, "lat")
        for body in stream:
            t0 = time.monotonic()
            results = rt.pipeline.ingest(body, actor="bench")
            events = msgspec.json.decode(body)["events"]
            for event, result in zip(events, results, strict=True):
                # Only events sharing a purpose with the receiver are routed to it.
                if result.code is None and ROUTED.intersection(result.purposes):
                    sent[event["event_id"]] = t0
            time.sleep(max(0.0, 0.02 - (time.monotonic() - t0)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with arrivals.lock:
                if all(k in arrivals.at for k in sent):
                    break
            time.sleep(0.02)
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()
    with arrivals.lock:
        delays = sorted((arrivals.at[k] - t) * 1000 for k, t in sent.items() if k in arrivals.at)
    lost = len(sent) - len(delays)
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))] if delays else float("nan")
    return {
        "events_per_s": round(rate),
        "delivered": delivered,
        "p50_delay_ms": round(delays[len(delays) // 2], 1) if delays else float("nan"),
        "p99_delay_ms": round(p99, 1),
        "undelivered": lost,
    }
