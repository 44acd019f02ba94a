"""The README's walk-through, run as a script against a real `consentry serve`, so it stays
true: pasted in order, every step answers without an HTTP error."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, MASTER_KEY
from tests.servers import free_port, serving

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## A walk through the API"


def _sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def walk_through() -> str:
    """The sh blocks of the README's walk-through section, in order."""
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    blocks = _sh_blocks(text[start : end if end != -1 else len(text)])
    assert blocks, "the walk-through has no sh block"
    return "\n".join(blocks)


# How the walk-through is pasted: (shell, whether CONSENTRY_ADMIN_KEY is set). Without it, the
# server and the script run as a newcomer's do: from one directory, over ./consentry-data,
# the key read from consentry-data/admin.key.
WAYS = [("bash", True), ("bash", False), ("zsh", False)]


def _environment(admin_key_set: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CONSENTRY_ADMIN_KEY", "CONSENTRY_DATA_DIR"}
    }
    return env | ({"CONSENTRY_ADMIN_KEY": ADMIN_KEY} if admin_key_set else {})


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """`consentry serve` on a free loopback port, run from tmp_path over a fresh
    ./consentry-data, with or without CONSENTRY_ADMIN_KEY (the test's parameter)."""
    _, admin_key_set = request.param
    port = free_port()
    env = _environment(admin_key_set) | {
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        # The walk-through's warehouse is fictional: no test sends anything off this machine.
        "CONSENTRY_DELIVERY_WORKER": "false",
        "CONSENTRY_DSR_POLL_SECONDS": "0.5",
    }
    with serving(port, env, cwd=tmp_path):
        yield f"127.0.0.1:{port}"


def test_the_walk_through_names_values_and_fails_on_http_errors() -> None:
    script = walk_through()
    # Values are named (SID=$(...)), never placeholders to fill in by hand.
    assert re.findall(r"<[a-z_ ]+>|\b(?:req|tok|exp|sub)_\.\.\.", script) == []
    assert "SID=$(" in script
    assert "jq" not in script.split()
    for line in script.splitlines():
        if re.search(r"\bcurl\b", line):
            assert "--fail-with-body" in line or re.search(r"\s-s?f\b", line), line


def test_no_block_of_the_readme_holds_a_comment() -> None:
    """zsh, interactive, takes `#` for a command unless `interactivecomments` is set: a pasted
    `KEY=... # the key` fails with "command not found: #". What a block says goes in prose."""
    blocks = _sh_blocks(README.read_text())
    assert len(blocks) > 5
    for block in blocks:
        for line in block.splitlines():
            assert not re.search(r"(?:^|\s)#", line), line


def _answers(stdout: str) -> list[Any]:
    """Every JSON answer the script printed (one a line); CSV lines are skipped."""
    found = []
    for line in stdout.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _paste(shell: str, script: str, cwd: Path, env: dict[str, str]) -> Any:
    """The script as a user pastes it: bash, or an interactive zsh without a startup file
    (`-f`: no .zshrc setting `interactivecomments`), reading it line by line from stdin;
    both stop at the first failing command."""
    if shell == "zsh":
        if shutil.which("zsh") is None:
            pytest.skip("zsh is not installed")
        command = ["zsh", "-f", "-i", "-o", "errexit", "-o", "nounset", "-o", "pipefail"]
        stdin = script
    else:
        command = ["bash", "-euo", "pipefail", "-c", script]
        stdin = None
    return subprocess.run(
        command,
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    ("way", "server"),
    [(way, way) for way in WAYS],
    ids=[f"{shell}-{'env-key' if env else 'key-file'}" for shell, env in WAYS],
    indirect=["server"],
)
def test_the_walk_through_runs_against_a_real_server(
    way: tuple[str, bool], server: str, tmp_path: Path
) -> None:
    shell, admin_key_set = way
    if not admin_key_set:
        # The key the script reads is the one the server wrote beside it.
        assert (tmp_path / "consentry-data" / "admin.key").is_file()
    script = walk_through().replace("localhost:8000", server)
    result = _paste(shell, script, tmp_path, _environment(admin_key_set))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "command not found" not in result.stderr
    answers = [a for a in _answers(result.stdout) if isinstance(a, dict)]

    events = [a for a in answers if "accepted" in a and "results" in a]
    assert events, "no answer from POST /v1/events"
    assert events[0]["accepted"] == 1
    assert events[0]["rejected"] == 0
    assert events[0]["results"][0]["purposes"] == ["analytics"]

    grouped = [a for a in answers if "rows" in a and "dp_epsilon" not in a]
    assert grouped, "no answer from POST /v1/query"
    assert grouped[0]["rows"][0]["url"] == "/help"
    assert grouped[0]["rows"][0]["value"] == 5
    assert "suppressed" not in grouped[0]

    read = [a for a in answers if a.get("items") and "policy_version" in a]
    assert read[0]["items"][0]["event_id"] == "evt-1"
    shown = read[0]["items"][0]["properties"]
    assert shown["url"] == "/help"
    assert "message" in shown, "the redacted message is not shown to its purpose"
    assert "7700 900123" not in shown["message"]

    detokenized = [a for a in answers if "values" in a and "unknown" in a]
    assert list(detokenized[0]["values"].values()) == ["4111 1111 1111 1111"]

    reports = [a for a in answers if "subject_found" in a]
    assert reports, "the access request's result was not reached"
    assert reports[0]["subject_found"] is True
    assert reports[0]["events"], "the access report holds no event"

    checks = [a for a in answers if "allowed" in a and "reason" in a]
    assert [c["allowed"] for c in checks] == [True, False]

    erasure = [a for a in answers if a.get("type") == "erasure" and "request_id" in a]
    assert erasure, "the erasure request was not accepted"
    assert erasure[0]["status"] in {"received", "verified", "in_progress", "awaiting_downstream"}

    proofs = [a for a in answers if "audit_path" in a or "consistency_path" in a]
    assert len(proofs) == 2
