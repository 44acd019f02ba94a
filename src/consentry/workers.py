"""`consentry serve --workers N`: N worker processes, each listening on a socket of its own
bound to the same port (SO_REUSEPORT), so the kernel spreads new connections over them one by
one. With one shared socket (uvicorn's `--workers`), the first process to wake accepts every
connection waiting at that moment: a client's few keep-alive connections, opened together,
land on one worker while the others idle (measured: 0.84 and 0.23 cores of two)."""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

from consentry.http.protocol import protocol_class
from consentry.settings import Settings

log = logging.getLogger(__name__)

# uvicorn's exit code when a worker cannot start (the app failed to load or start up).
STARTUP_FAILURE = 3
# A worker that ends sooner than this after its start is restarted after a pause.
_QUICK_EXIT = 5.0
# uvicorn's default listen backlog.
_BACKLOG = 2048


# The port locks this process holds, for as long as it lives: the kernel lets them go when the
# process ends, however it ends (kill -9 included), so a lock never outlives its server.
_claims: list[socket.socket] = []


def claim_port(host: str, port: int, *, shared: bool) -> socket.socket:
    """Make this process the one `consentry serve` on `port` and hold the port from now on,
    or raise OSError (EADDRINUSE). Returns the bound socket that holds it: listening already
    for one server (`shared=False`, given to uvicorn); for workers (`shared=True`), bound but
    never listening, the supervisor's reservation beside which each worker binds its own.

    Our workers bind with SO_REUSEPORT, which lets any process of the same user bind the port
    beside them: a second server would start silently and the kernel would split requests
    between two stores. So, before anything starts: a lock named after the user and the port
    that one `consentry serve` holds at a time (an abstract Unix socket, Linux only), then a
    bind without SO_REUSEPORT, which fails while any other socket listens there, ours or not.
    That socket is kept, not closed and bound again later: migrations run before the workers
    listen, and another program could take the port in between."""
    if sys.platform.startswith("linux"):
        lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lock.bind(lock_name(port))
        except OSError:
            lock.close()
            raise _in_use("another `consentry serve` runs on this port") from None
        _claims.append(lock)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn binds: connections of an earlier server left in TIME_WAIT do not count.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        raise _in_use("another program listens there") from None
    if not shared:
        # Listening, no other bind succeeds; connections wait in the backlog until uvicorn
        # accepts them.
        sock.listen(_BACKLOG)
        return sock
    # Bound, not listening: a socket with SO_REUSEADDR would let another program with it bind
    # here too, so it is cleared now that TIME_WAIT no longer matters. SO_REUSEPORT, set after
    # the exclusive bind, lets our workers (and only sockets with it, of this user) bind beside.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def lock_name(port: int) -> str:
    """The abstract socket name of the port lock: one namespace for every user of the host,
    so the uid keeps users apart (two users' servers on one port on different addresses)."""
    return f"\0consentry-serve-{os.getuid()}-{port}"


def _in_use(why: str) -> OSError:
    return OSError(errno.EADDRINUSE, f"{os.strerror(errno.EADDRINUSE)} ({why})")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other processes of this user may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(host: str, port: int, log_level: str) -> None:
    """One worker process: its own listening socket, the app of `consentry.cli.worker_app`."""
    sock = listening_socket(host, port)
    # The worker's app reads its settings from the same environment (cli.worker_app).
    settings = Settings.from_env(os.environ)
    config = uvicorn.Config(
        "consentry.cli:worker_app",
        factory=True,
        log_level=log_level,
        http=protocol_class(settings.head_timeout_seconds),
        # X-Forwarded-Proto and -For are believed only with CONSENTRY_TRUST_PROXY (uvicorn
        # would believe any proxy on this machine by default).
        proxy_headers=settings.trust_proxy,
        ssl_certfile=settings.ssl_certfile or None,
        ssl_keyfile=settings.ssl_keyfile or None,
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve(reserved: socket.socket, host: str, port: int, workers: int, log_level: str) -> int:
    """Start the workers, start another for any that ends, stop them all on SIGINT or
    SIGTERM. Returns the exit code: 0, or 1 when a worker could not start.

    `reserved` is `claim_port(..., shared=True)`: bound (never listening) for as long as the
    workers run, so that no program without SO_REUSEPORT takes the port while a worker is
    being replaced; it is closed on return."""
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(
            target=run_worker, args=(host, port, log_level), name="consentry-worker"
        )
        process.start()
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    code = 0
    try:
        while not stopping.wait(0.5):
            for n, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("a worker could not start: stopping")
                    stopping.set()
                    code = 1
                    break
                log.warning(
                    "worker %s ended (exit code %s): starting another",
                    process.pid,
                    process.exitcode,
                )
                if time.monotonic() - started < _QUICK_EXIT:
                    time.sleep(1.0)
                running[n] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()
        for process, _ in running:
            process.join(timeout=30)
        reserved.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
