"""The `consentry` command: api-key create/list/revoke, settings, serve as a real process, docs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from consentry.auth import api_keys
from consentry.bench import server
from consentry.cli import app
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import MASTER_KEY
from tests.servers import free_port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CONSENTRY_DATA_DIR": str(tmp_path / "data"), "CONSENTRY_MASTER_KEY": MASTER_KEY}


def test_api_key_create_prints_the_key_alone_on_the_last_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["api-key", "create", "--role", "collector"], env=env)
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("csk_")
    assert " " not in key
    runtime = Runtime(Settings.from_env(env))
    try:
        with runtime.store.read() as conn:
            principal = api_keys.authenticate(conn, key, admin_key="")
    finally:
        runtime.close()
    assert principal is not None
    assert principal.role == "collector"


def test_api_key_list_and_revoke(env: dict[str, str]) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app, ["api-key", "create", "--role", "auditor", "--label", "ops"], env=env
    )
    key = created.output.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    listed = runner.invoke(app, ["api-key", "list"], env=env)
    assert key_id in listed.output
    assert key not in listed.output
    revoked = runner.invoke(app, ["api-key", "revoke", key_id], env=env)
    assert revoked.exit_code == 0
    runtime = Runtime(Settings.from_env(env))
    try:
        with runtime.store.read() as conn:
            assert api_keys.authenticate(conn, key, admin_key="") is None
    finally:
        runtime.close()


def test_unknown_role_is_refused(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["api-key", "create", "--role", "boss"], env=env)
    assert result.exit_code != 0


def test_settings_command_redacts_secrets(env: dict[str, str]) -> None:
    env = env | {"CONSENTRY_ADMIN_KEY": "super-secret-admin-key"}
    result = CliRunner().invoke(app, ["settings"], env=env, terminal_width=200)
    assert result.exit_code == 0
    assert "CONSENTRY_ADMIN_KEY" in result.output
    assert "super-secret-admin-key" not in result.output


def _command_paths(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, command in getattr(group, "commands", {}).items():
        paths += _command_paths(command, (*path, name))
    return paths


def test_help_shows_flags_without_type_noise() -> None:
    paths = _command_paths(typer.main.get_command(app))
    assert ("serve",) in paths
    assert ("api-key", "create") in paths
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        for line in result.output.splitlines():
            if line.lstrip().startswith("--"):
                for noise in ("<str>", "<int", "<list[", "<path>"):
                    assert noise not in line, (path, line)
    bench = CliRunner().invoke(app, ["bench", "--help"]).output
    assert "--quick " in bench
    assert "--json PATH" in bench
    assert "--workers N" in CliRunner().invoke(app, ["serve", "--help"]).output


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_consentry(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_commands_log_no_info_lines(env: dict[str, str], tmp_path: Path) -> None:
    for args in (["api-key", "list"], ["requests", "run"], ["api-key", "list"]):
        result = _run(args, {**os.environ, **env}, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "INFO" not in result.stderr
        assert "INFO" not in result.stdout


def test_a_command_about_to_create_an_unnamed_data_dir_says_so(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k != "CONSENTRY_DATA_DIR"}
    base["CONSENTRY_MASTER_KEY"] = MASTER_KEY
    first = _run(["api-key", "list"], base, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "CONSENTRY_DATA_DIR is not set" in first.stderr
    assert f"creating a new data directory, {tmp_path / 'consentry-data'}" in first.stderr
    assert "CONSENTRY_DATA_DIR is not set" not in first.stdout
    assert (tmp_path / "consentry-data").is_dir()
    # The directory is there now: nothing new is made, nothing to say.
    again = _run(["requests", "run"], base, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "CONSENTRY_DATA_DIR" not in again.stderr
    # A directory named by the variable is what the user asked for.
    named = _run(["api-key", "list"], base | {"CONSENTRY_DATA_DIR": str(tmp_path / "d")}, tmp_path)
    assert named.returncode == 0, named.stderr
    assert "CONSENTRY_DATA_DIR" not in named.stderr
    # `settings` opens no store and makes nothing.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shown = _run(["settings"], base, elsewhere)
    assert shown.returncode == 0
    assert "CONSENTRY_DATA_DIR is not set" not in shown.stderr
    assert not (elsewhere / "consentry-data").exists()


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        if f"PPid:\t{pid}" in lines:
            found.append(int(status.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_starts_and_announces_docs_and_key(
    env: dict[str, str], tmp_path: Path, workers: int
) -> None:
    port = free_port()
    consentry = Path(sys.executable).parent / "consentry"
    proc = subprocess.Popen(
        [str(consentry), "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    assert json.load(resp)["status"] == "ok"
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        key = (tmp_path / "data" / "admin.key").read_text().strip()
        assert (tmp_path / "data" / "admin.key").stat().st_mode & 0o777 == 0o600
        request = urllib.request.Request(
            f"{base}/v1/me", headers={"Authorization": f"Bearer {key}"}
        )
        # Every worker accepts the announced key (each request may meet either).
        for _ in range(6):
            with urllib.request.urlopen(request, timeout=5) as resp:
                assert json.load(resp)["role"] == "admin"
        if workers > 1:
            # uvicorn's supervisor, its worker processes (and a resource tracker).
            assert len(_children(proc.pid)) >= workers
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert f"{base}/docs" in output
    assert key in output


def test_requests_run_does_one_pass(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["requests", "run"], env=env)
    assert result.exit_code == 0, result.output
    done = json.loads(result.output.strip().splitlines()[-1])
    assert set(done) >= {"overdue", "advanced", "withdrawals"}


def test_serve_workers_listen_each_and_are_replaced(env: dict[str, str]) -> None:
    """`serve --workers 2`: each worker listens on a socket of its own (the kernel spreads
    connections over them one by one); a worker that dies is replaced; SIGTERM stops all."""
    port = free_port()
    consentry = Path(sys.executable).parent / "consentry"
    proc = subprocess.Popen(
        [str(consentry), "serve", "--port", str(port), "--workers", "2"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while server.listeners(port) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            assert proc.poll() is None
            time.sleep(0.2)
        # The workers, not multiprocessing's resource tracker.
        workers = [p for p in _children(proc.pid) if b"spawn_main" in _cmdline(p)]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while server.listeners(port) < 2 or workers[0] in _children(proc.pid):
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        for _ in range(4):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert json.load(resp)["status"] == "ok"
        deadline = time.monotonic() + 30
        while len(alive := [p for p in _children(proc.pid) if b"spawn_main" in _cmdline(p)]) != 2:
            children = [_cmdline(p)[:70] for p in _children(proc.pid)]
            assert time.monotonic() < deadline, f"workers: {alive}; children: {children}"
            time.sleep(0.2)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    # The supervisor joined its workers before it exited.
    assert [pid for pid in alive if b"spawn_main" in _cmdline(pid)] == []
    assert server.listeners(port) == 0


def _consentry() -> str:
    return str(Path(sys.executable).parent / "consentry")


def _wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                assert json.load(resp)["status"] == "ok"
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.2)


def _serve_on_taken_port(
    env: dict[str, str], port: int, workers: int
) -> subprocess.CompletedProcess[str]:
    # A bound timeout: without the check, the second server would simply run.
    return subprocess.run(
        [_consentry(), "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )


def _refused(result: subprocess.CompletedProcess[str], port: int) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    # It fails before its banner: nothing announces a server that is not there.
    assert "Consentry on" not in result.stdout
    assert "Admin key" not in result.stdout


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_a_port_another_program_listens_on_fails_before_its_banner(
    env: dict[str, str], tmp_path: Path, workers: int
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve_on_taken_port(env, port, workers)
    _refused(result, port)
    assert "another program listens there" in result.stderr
    # Refused before the store opened: the data directory was not even made.
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("first", "second"), [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_a_second_server_on_the_same_port_fails_and_the_first_keeps_serving(
    tmp_path: Path, first: int, second: int
) -> None:
    """With SO_REUSEPORT a second `serve --workers N` bound beside the first and the kernel
    split requests between two stores; now the second one stops before its banner."""
    port = free_port()
    env_first = {"CONSENTRY_DATA_DIR": str(tmp_path / "one"), "CONSENTRY_MASTER_KEY": MASTER_KEY}
    env_second = env_first | {"CONSENTRY_DATA_DIR": str(tmp_path / "two")}
    proc = subprocess.Popen(
        [_consentry(), "serve", "--port", str(port), "--workers", str(first)],
        env={**os.environ, **env_first},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_healthy(proc, port)
        result = _serve_on_taken_port(env_second, port, second)
        _refused(result, port)
        assert not (tmp_path / "two").exists()
        key = (tmp_path / "one" / "admin.key").read_text().strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {key}"}
        )
        # Every connection still meets the first server's store and key.
        for _ in range(6):
            with urllib.request.urlopen(request, timeout=5) as resp:
                assert json.load(resp)["role"] == "admin"
    finally:
        proc.terminate()
        # uvicorn alone re-raises the SIGTERM it handled; the supervisor of workers exits 0.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_two_servers_started_together_on_one_port_leave_one(tmp_path: Path) -> None:
    port = free_port()
    procs = [
        subprocess.Popen(
            [_consentry(), "serve", "--port", str(port), "--workers", "2"],
            env={
                **os.environ,
                "CONSENTRY_DATA_DIR": str(tmp_path / name),
                "CONSENTRY_MASTER_KEY": MASTER_KEY,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    try:
        deadline = time.monotonic() + 60
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "both servers run on one port"
            time.sleep(0.2)
        refused = [p for p in procs if p.poll() is not None]
        assert len(refused) == 1
        assert refused[0].returncode == 1
        assert refused[0].stderr is not None
        assert "Address already in use" in refused[0].stderr.read()
        running = next(p for p in procs if p is not refused[0])
        _wait_healthy(running, port)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(timeout=30)
            if p.stderr is not None:
                p.stderr.close()


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        return [(path, command)]
    return [found for name, sub in subcommands.items() for found in _commands(sub, (*path, name))]


def test_every_command_and_option_is_documented() -> None:
    text = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    sections = dict(re.findall(r"^## `consentry ([a-z -]+)`\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    commands = _commands(typer.main.get_command(app))
    assert len(commands) >= 10
    for path, command in commands:
        name = " ".join(path)
        assert name in sections, f"`consentry {name}` is missing from docs/cli.md"
        for param in command.params:
            shown = param.opts[0] if param.param_type_name == "option" else param.metavar
            documented = re.search(rf"`{re.escape(shown)}[ `]", sections[name])
            assert documented, f"{name} {shown} is missing from docs/cli.md"


def test_api_key_create_makes_a_browser_key_bound_to_its_origins(env: dict[str, str]) -> None:
    runner = CliRunner()
    args = ["api-key", "create", "--role", "browser", "--origin", "https://shop.example.com"]
    result = runner.invoke(app, [*args, "--origin", "http://localhost:5173"], env=env)
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("csk_")
    assert "https://shop.example.com, http://localhost:5173" in result.output
    runtime = Runtime(Settings.from_env(env))
    try:
        with runtime.store.read() as conn:
            principal = api_keys.authenticate(conn, key, admin_key="")
    finally:
        runtime.close()
    assert principal is not None
    assert principal.role == "browser"
    assert principal.origins == {"https://shop.example.com", "http://localhost:5173"}
    for bad in (["--role", "browser"], [*args[2:], "--origin", "http://shop.example.com"]):
        refused = runner.invoke(app, ["api-key", "create", *bad], env=env)
        assert refused.exit_code == 1
        assert "invalid_request" in refused.output
    refused = runner.invoke(
        app,
        ["api-key", "create", "--role", "collector", "--origin", "https://a.example.com"],
        env=env,
    )
    assert refused.exit_code == 1


def test_identity_secret_create_list_and_revoke(env: dict[str, str]) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["identity-secret", "create", "--label", "shop"], env=env)
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("cis_")
    secret_id = secret.split("_")[1]
    listed = runner.invoke(app, ["identity-secret", "list"], env=env, terminal_width=200)
    assert secret_id in listed.output
    assert secret not in listed.output
    revoked = runner.invoke(app, ["identity-secret", "revoke", secret_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    missing = runner.invoke(app, ["identity-secret", "revoke", "nope"], env=env)
    assert missing.exit_code == 1
    assert "identity_secret_not_found" in missing.output
