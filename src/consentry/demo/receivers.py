"""The demo's downstream systems: webhook receivers on loopback that check each body's
signature, count what arrives (event deliveries, rights notices by type) and acknowledge it."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """One system's receiver on 127.0.0.1 (a free port): `url`, then `/events` for deliveries
    and `/rights` for rights notices. Set `secret` (the system's signing secret) to check
    signatures; a body that fails the check is answered 401 and counted in `bad_signatures`."""

    def __init__(self, system_id: str) -> None:
        self.system_id = system_id
        self.secret = b""
        self.events = 0
        self.batches = 0
        self.notices: Counter[str] = Counter()
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"receiver-{system_id}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _take(self, body: bytes, signature: str) -> bool:
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if self.secret and not hmac.compare_digest(expected, signature.removeprefix("sha256=")):
            with self._lock:
                self.bad_signatures += 1
            return False
        message: dict[str, Any] = json.loads(body)
        with self._lock:
            if message.get("type") == "events":
                self.batches += 1
                self.events += len(message.get("events", []))
            else:
                self.notices[str(message.get("type"))] += 1
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = receiver._take(body, self.headers.get("X-Consentry-Signature", ""))
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass  # a receiver's access log would only clutter the demo's screen

        return Handler
