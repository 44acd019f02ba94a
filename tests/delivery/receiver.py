"""A real HTTP receiver on loopback whose answers a test scripts: 200, a 5xx, a hang."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records every POST (body, headers); answers from `script` in turn, then `default`.
    An answer is a status code, or "hang" (hold the request for `hang_seconds`)."""

    def __init__(self, script: list[int | str] | None = None, default: int | str = 200) -> None:
        self.script = list(script or [])
        self.default = default
        self.hang_seconds = 3.0
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.attempts = 0
        self.times: list[float] = []
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("not started")
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for body, _ in self.received]

    def events(self) -> list[dict[str, Any]]:
        return [e for body in self.bodies() for e in body.get("events", [])]

    def _answer(self) -> int | str:
        with self._lock:
            self.attempts += 1
            self.times.append(time.monotonic())
            return self.script.pop(0) if self.script else self.default

    def handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = outer._answer()
                if answer == "hang":
                    time.sleep(outer.hang_seconds)
                    return
                if answer == 200:
                    with outer._lock:
                        outer.received.append((body, dict(self.headers)))
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def receiver(script: list[int | str] | None = None, default: int | str = 200) -> Iterator[Receiver]:
    r = Receiver(script, default)
    server = ThreadingHTTPServer(("127.0.0.1", 0), r.handler())
    server.daemon_threads = True
    r.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
