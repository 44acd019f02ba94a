"""The benchmark's HTTP load: clients in a process of their own, each a thread on one kept-alive
connection writing raw HTTP/1.1, so that the load costs little CPU beside the server it
measures and needs no tool outside the project."""

from __future__ import annotations

import itertools
import multiprocessing
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection


@dataclass(frozen=True)
class Load:
    """What to send: `bodies[n % len(bodies)]` as request n (client c sends c, c + clients,
    ...); with `stamp`, each occurrence of it followed by a serial unique over the run and a
    dash, so that every request carries new event ids."""

    port: int
    path: str
    token: str
    bodies: tuple[bytes, ...]
    seconds: float
    clients: int
    stamp: bytes = b""


@dataclass(frozen=True)
class Outcome:
    requests: int
    seconds: float
    # Milliseconds from the first byte sent to the last byte of the answer, per request.
    latencies: list[float]
    # The first answer that was not 200, if any.
    failure: str | None = None


def run(load: Load) -> Outcome:
    """Run `load` from a new process and wait for its outcome."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_main, args=(load, theirs), daemon=True)
    process.start()
    theirs.close()
    try:
        if not ours.poll(load.seconds + 60):
            raise RuntimeError("the load process did not answer")
        outcome: Outcome = ours.recv()
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    return outcome


def _main(load: Load, pipe: Connection) -> None:
    pipe.send(_drive(load))
    pipe.close()


def _drive(load: Load) -> Outcome:
    latencies: list[list[float]] = [[] for _ in range(load.clients)]
    failures: list[str] = []
    serial = itertools.count()
    serial_lock = threading.Lock()
    start = threading.Barrier(load.clients + 1)
    stop_at: list[float] = []

    def request(n: int) -> bytes:
        body = load.bodies[n % len(load.bodies)]
        if load.stamp:
            with serial_lock:
                mark = f"{load.stamp.decode()}{next(serial)}-".encode()
            body = body.replace(load.stamp, mark)
        head = (
            f"POST {load.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {load.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body

    def client(slot: int) -> None:
        mine = latencies[slot]
        with socket.create_connection(("127.0.0.1", load.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = _Reader(sock)
            start.wait()
            n = slot
            while time.monotonic() < stop_at[0] and not failures:
                message = request(n)
                t0 = time.perf_counter()
                sock.sendall(message)
                status, _ = reader.answer()
                mine.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    failures.append(f"HTTP {status} from {load.path}")
                n += load.clients

    threads = [threading.Thread(target=client, args=(s,)) for s in range(load.clients)]
    for t in threads:
        t.start()
    stop_at.append(time.monotonic() + load.seconds)
    started = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    every = [ms for mine in latencies for ms in mine]
    return Outcome(len(every), seconds, every, failures[0] if failures else None)


class _Reader:
    """Reads HTTP/1.1 answers with a Content-Length off one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def answer(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self._buffer:
            self._more()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise RuntimeError("the load client reads Content-Length answers only")
        while len(rest) < length:
            self._buffer = rest
            self._more()
            rest = self._buffer
        self._buffer = rest[length:]
        return status, rest[:length]

    def _more(self) -> None:
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self._buffer += chunk
