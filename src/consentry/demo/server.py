"""The demo's own gateway: `consentry serve` as a child process on a free loopback port over a
data directory of its own, and `consentry user create` run against that same store."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from consentry.client import Client, ConsentryClientError

# Written into a data directory the demo made, so that a later run may wipe it (and nothing
# else): the demo starts from an empty store every time.
MARKER = ".consentry-demo"
ADMIN_KEY_FILE = "admin.key"
LOG_FILE = "server.log"
START_SECONDS = 60.0
STOP_SECONDS = 15.0


class DemoError(Exception):
    """The demo cannot go on (said to the person running it, without a traceback)."""


def prepare(data_dir: Path) -> None:
    """An empty data directory for the demo: made, or emptied when an earlier demo made it.
    A directory holding anything else is refused (it may be a real store)."""
    if data_dir.exists():
        if not data_dir.is_dir():
            raise DemoError(f"{data_dir} is not a directory")
        if any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
            raise DemoError(
                f"{data_dir} holds files the demo did not make; choose another --data-dir "
                "(the demo empties its data directory when it starts)"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(mode=0o700, parents=True)
    (data_dir / MARKER).write_text("Made by `consentry demo`; emptied when it starts again.\n")


def _consentry() -> list[str]:
    """The command that runs this installation's CLI."""
    script = Path(sys.executable).parent / "consentry"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from consentry.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """`consentry serve` over `data_dir`, its output in `<data_dir>/server.log`. The child has
    a session of its own, so a Ctrl-C in the terminal reaches the demo alone, which then
    stops the server itself (`stop`)."""

    def __init__(self, data_dir: Path, environ: Mapping[str, str]) -> None:
        self.data_dir = data_dir.resolve()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        # The demo's store is its own: no setting of the calling shell points it elsewhere
        # (a CONSENTRY_DB naming a real database least of all).
        self._base_env = {k: v for k, v in environ.items() if not k.startswith("CONSENTRY_")}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of the server and of CLI commands acting on its store."""
        return self._base_env | {
            "CONSENTRY_DATA_DIR": str(self.data_dir),
            "CONSENTRY_HOST": "127.0.0.1",
            "CONSENTRY_PORT": str(self.port),
            "CONSENTRY_WORKERS": "1",
            "CONSENTRY_LOG_LEVEL": "warning",
            # The receivers are on loopback; the demo's requests and notices move quickly.
            "CONSENTRY_ALLOW_PRIVATE_ENDPOINTS": "1",
            "CONSENTRY_DSR_POLL_SECONDS": "1",
        }

    def start(self) -> str:
        """Start the server; returns the admin key (the development key it wrote into its
        data directory) once the API answers with it."""
        for _ in range(3):
            self.port = _free_port()
            key = self._try_start()
            if key is not None:
                return key
        raise DemoError(f"the server did not start; see {self.data_dir / LOG_FILE}")

    def _try_start(self) -> str | None:
        """None when the server ended at once (another program took the port meanwhile)."""
        with open(self.data_dir / LOG_FILE, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, arguments built here
                [*_consentry(), "serve", "--port", str(self.port)],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        key_file = self.data_dir / ADMIN_KEY_FILE
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return None
            if key_file.exists():
                key = key_file.read_text().strip()
                try:
                    with Client(self.url, key, timeout=2) as client:
                        client.api_keys.me()
                    return key
                except ConsentryClientError:  # not listening yet, or the key half written
                    pass
            time.sleep(0.2)
        self.stop()
        raise DemoError(f"the server did not answer within {START_SECONDS:.0f} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s) and wait for it to end."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def enrol(self, email: str) -> Enrolment:
        """Start creating a DPO account on the demo's store with `consentry user create`
        (a process of its own, which takes a few seconds: it runs while traffic streams)."""
        return Enrolment(
            subprocess.Popen(  # noqa: S603 - our own CLI, arguments built here
                [*_consentry(), "user", "create", "--role", "dpo", "--email", email],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )


class Enrolment:
    """A running `consentry user create`: its enrolment link, or stopped unused."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def link(self) -> str:
        """The one-time enrolment link it printed (waits for it to end)."""
        out, err = self.proc.communicate(timeout=60)
        lines = out.strip().splitlines()
        if self.proc.returncode != 0 or not lines:
            raise DemoError(f"consentry user create failed: {err.strip()[-500:]}")
        return lines[-1]

    def stop(self) -> None:
        """End it unless `link` has read it (the demo was interrupted)."""
        if self.proc.returncode is not None:
            return
        self.proc.kill()
        self.proc.communicate()
