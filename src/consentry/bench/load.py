"""The benchmark's HTTP load: clients in a process of their own, each a thread on one kept-alive
connection writing raw HTTP/1.1, so that the load costs little CPU beside the server it
measures and needs no tool outside the project."""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import msgspec


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
    # Sent first and not counted: the server's caches fill, its workers reach steady state.
    warmup: float = 0.0


@dataclass(frozen=True)
class Outcome:
    requests: int
    seconds: float
    # Milliseconds from the first byte sent to the last byte of the answer, per request.
    latencies: list[float]
    # CPU seconds the load process spent over the counted seconds (its share of the machine).
    cpu_seconds: float
    # The first answer that was not 200, if any.
    failure: str | None = None


def run(load: Load) -> Outcome:
    """Run `load` from a new process (`python -m consentry.bench.load`, the load on its
    stdin, the outcome on its stdout) and wait for its outcome."""
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=msgspec.msgpack.encode(load),
        capture_output=True,
        timeout=load.warmup + load.seconds + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed: {done.stderr.decode()[-2000:]}")
    return msgspec.msgpack.decode(done.stdout, type=Outcome)


def _drive(load: Load) -> Outcome:
    latencies: list[list[float]] = [[] for _ in range(load.clients)]
    failures: list[str] = []
    serial = itertools.count()
    serial_lock = threading.Lock()
    # [when counting starts, when the clients stop], set once every client has connected.
    window: list[float] = []

    def open_window() -> None:
        counted = time.monotonic() + load.warmup
        window.extend((counted, counted + load.seconds))

    start = threading.Barrier(load.clients + 1, action=open_window)

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
        try:
            drive(slot, latencies[slot])
        except (OSError, RuntimeError, ValueError, threading.BrokenBarrierError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            start.abort()

    def drive(slot: int, mine: list[float]) -> None:
        with socket.create_connection(("127.0.0.1", load.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = _Reader(sock)
            start.wait()
            n = slot
            while time.monotonic() < window[1] and not failures:
                message = request(n)
                t0 = time.perf_counter()
                sock.sendall(message)
                status, _ = reader.answer()
                # Counted when answered within the window (the warm-up's answers are not).
                if time.monotonic() >= window[0]:
                    mine.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    failures.append(f"HTTP {status} from {load.path}")
                n += load.clients

    threads = [threading.Thread(target=client, args=(s,)) for s in range(load.clients)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()
    if window:
        time.sleep(max(0.0, window[0] - time.monotonic()))
    cpu = time.process_time()
    for t in threads:
        t.join()
    seconds = time.monotonic() - window[0] if window else 0.0
    cpu = time.process_time() - cpu
    every = [ms for mine in latencies for ms in mine]
    return Outcome(len(every), seconds, every, cpu, failures[0] if failures else None)


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


if __name__ == "__main__":
    given = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=Load)
    sys.stdout.buffer.write(msgspec.msgpack.encode(_drive(given)))
