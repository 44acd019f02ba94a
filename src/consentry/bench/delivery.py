"""The benchmark's delivery section: events delivered per second to one fast receiver on
loopback, and the delay from ingest to delivery with the worker running. The receiver runs in
a process of its own, as a real one would (in this process it would compete with the worker
for the interpreter lock)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
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


def _receive(pipe: Connection) -> None:
    """The receiver's process: serves until told to stop; answers ("wait", ids, seconds) with
    the arrival time (time.monotonic, one clock for every process) of those of the ids that
    arrived within the seconds."""
    arrivals = _Arrivals()
    server = _server(arrivals)
    pipe.send(server.server_address[1])
    while (message := pipe.recv())[0] == "wait":
        _, ids, seconds = message
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with arrivals.lock:
                if all(k in arrivals.at for k in ids):
                    break
            time.sleep(0.02)
        with arrivals.lock:
            pipe.send({k: arrivals.at[k] for k in ids if k in arrivals.at})
    server.shutdown()
    server.server_close()


def delivery(world: World, n_batches: int, seconds: float) -> dict[str, Any]:
    """Throughput: a filled outbox drained by the worker. Delay: batches of 100 ingested
    every 20 ms while the worker runs; each event's time from the start of its ingest call to
    its arrival at the receiver."""
    rt = world.runtime
    context = multiprocessing.get_context("spawn")
    pipe, child_end = context.Pipe()
    receiver = context.Process(target=_receive, args=(child_end,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{pipe.recv()}/events"
    arrived: dict[str, float] = {}
    with rt.store.write() as conn:
        system = parse("bench_sink", SYSTEM | {"endpoint": url}, rt.purposes.all(conn))
        rt.datamap.put(conn, system, actor="bench")
    worker = rt.delivery_worker(WebhookSink(10.0, allow_private=True))
    try:
        bodies = batches(world, n_batches, 1000, "dlv")
        for body in bodies:
            rt.pipeline.ingest(body, actor="bench")
        started = time.perf_counter()
        # As the worker's lane drains a system (queued rows are all due, none is dropped).
        delivered = worker.drain("bench_sink")
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
        pipe.send(("wait", list(sent), 10.0))
        arrived = pipe.recv()
    finally:
        worker.stop()
        pipe.send(("stop",))
        receiver.join(timeout=10)
    delays = sorted((arrived[k] - t) * 1000 for k, t in sent.items() if k in arrived)
    lost = len(sent) - len(delays)
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))] if delays else float("nan")
    return {
        "events_per_s": round(rate),
        "delivered": delivered,
        "p50_delay_ms": round(delays[len(delays) // 2], 1) if delays else float("nan"),
        "p99_delay_ms": round(p99, 1),
        "undelivered": lost,
    }
