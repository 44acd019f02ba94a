"""workers.py: the port claim that makes one `consentry serve` the port's, and the sockets
its workers bind beside it."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

import pytest

from consentry import workers
from consentry.workers import claim_port
from tests.servers import free_port


def _release(port: int) -> None:
    """The lock is the process's for its life; this test process lets it go by hand."""
    for lock in [c for c in workers._claims if f"-{port}" in str(c.getsockname())]:
        workers._claims.remove(lock)
        lock.close()


def _abstract_names() -> set[str]:
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return {fields[-1] for line in lines if len(fields := line.split()) >= 8}


def _bind_as_another_program(port: int) -> None:
    # As most servers bind (uvicorn, http.server, nginx): SO_REUSEADDR, no SO_REUSEPORT.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
        other.listen()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets: Linux")
@pytest.mark.parametrize("shared", [False, True])
def test_the_port_claim_holds_the_port_until_serving_ends(shared: bool) -> None:
    """The socket that checked the port is the one kept: from the claim on (through the
    migrations, before any worker listens) no other program binds there, while our own
    workers (SO_REUSEPORT) still do."""
    port = free_port()
    sock = claim_port("127.0.0.1", port, shared=shared)
    try:
        assert f"@consentry-serve-{os.getuid()}-{port}" in _abstract_names()
        with pytest.raises(OSError, match="Address already in use") as taken:
            _bind_as_another_program(port)
        assert taken.value.errno == errno.EADDRINUSE
        if shared:
            worker = socket.socket()
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
            worker.close()
            # Between two workers, with none listening, the reservation still holds the port.
            with pytest.raises(OSError, match="Address already in use"):
                _bind_as_another_program(port)
        else:
            # One server: it listens from the claim on, and connections wait for uvicorn.
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        with pytest.raises(OSError, match="another `consentry serve` runs on this port"):
            claim_port("127.0.0.1", port, shared=shared)
    finally:
        sock.close()
        _release(port)
    _bind_as_another_program(port)


@pytest.mark.parametrize("shared", [False, True])
def test_a_port_another_program_listens_on_is_refused(shared: bool) -> None:
    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        try:
            with pytest.raises(OSError, match="another program listens there") as taken:
                claim_port("127.0.0.1", port, shared=shared)
            assert taken.value.errno == errno.EADDRINUSE
        finally:
            _release(port)


def test_workers_bind_beside_each_other_on_one_port() -> None:
    """Each worker's own socket: the kernel spreads new connections over them."""
    port = free_port()
    first = workers.listening_socket("127.0.0.1", port)
    second = workers.listening_socket("127.0.0.1", port)
    try:
        first.listen()
        second.listen()
        assert first.getsockname() == second.getsockname() == ("127.0.0.1", port)
    finally:
        first.close()
        second.close()


def test_the_lock_name_is_the_users_and_the_ports() -> None:
    name = workers.lock_name(8080)
    assert name.startswith("\0")
    assert name.endswith(f"-{os.getuid()}-8080")
    assert workers.lock_name(8081) != name
