"""`consentry user create | list | disable` on the store CONSENTRY_DATA_DIR names."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consentry import cli, clock
from consentry.cli import app
from consentry.errors import PersonExists, PersonNotFound
from consentry.people.models import PersonStatus
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import MASTER_KEY

EMAIL = "ada.lovelace@example.com"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "CONSENTRY_DATA_DIR": str(tmp_path / "data"),
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        "CONSENTRY_PUBLIC_URL": "https://privacy.example.com",
        "COLUMNS": "200",
    }


def _create(env: dict[str, str], email: str = EMAIL, role: str = "dpo") -> tuple[str, str]:
    result = CliRunner().invoke(app, ["user", "create", "--role", role, "--email", email], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    person_id = re.findall(r"per_[0-9a-f]{24}", lines[0])[0]
    return person_id, result.output


def test_create_prints_a_one_time_link_and_its_expiry(env: dict[str, str]) -> None:
    before = clock.now()
    person_id, output = _create(env, role="auditor")
    lines = output.strip().splitlines()
    assert lines[0] == f"Created {person_id} with role auditor."
    link = lines[-1]
    assert re.fullmatch(r"https://privacy\.example\.com/enrol\?token=[A-Za-z0-9_-]{43}", link)
    expiry = re.findall(r"valid until (\S+Z)", lines[1])[0]
    assert clock.rfc3339(before + timedelta(hours=24)) <= expiry
    assert expiry <= clock.rfc3339(clock.now() + timedelta(hours=24))
    runtime = Runtime(Settings.from_env(env))
    try:
        person = runtime.people.open_enrolment(link.split("token=")[1])
    finally:
        runtime.close()
    assert (person.person_id, person.email, person.role.value) == (person_id, EMAIL, "auditor")


def test_a_second_account_for_an_email_is_refused(env: dict[str, str]) -> None:
    _create(env)
    result = CliRunner().invoke(
        app, ["user", "create", "--role", "admin", "--email", EMAIL.upper()], env=env
    )
    assert isinstance(result.exception, PersonExists)


def test_the_refusal_is_one_clear_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = ["consentry", "user", "create", "--role", "dpo", "--email", EMAIL]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as first:
        cli.main()
    assert first.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as second:
        cli.main()
    assert second.value.code == 2
    assert (
        "error person_exists: an account for that e-mail address exists" in capsys.readouterr().err
    )


def test_unknown_role_is_refused(env: dict[str, str]) -> None:
    for role in ("collector", "boss"):
        result = CliRunner().invoke(
            app, ["user", "create", "--role", role, "--email", EMAIL], env=env
        )
        assert result.exit_code == 2, result.output


def test_list_and_disable(env: dict[str, str]) -> None:
    ada, _ = _create(env)
    grace, _ = _create(env, "grace.hopper@example.com", "operator")
    listed = CliRunner().invoke(app, ["user", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.output.splitlines() if "per_" in line]
    cells = [[c for c in row if c not in "│┃|"] for row in rows]
    assert [c[:4] for c in cells] == [
        [ada, "dpo", "pending", EMAIL],
        [grace, "operator", "pending", "grace.hopper@example.com"],
    ]
    disabled = CliRunner().invoke(app, ["user", "disable", "--id", ada], env=env)
    assert disabled.exit_code == 0, disabled.output
    assert disabled.output.strip() == f"Disabled {ada}"
    runtime = Runtime(Settings.from_env(env))
    try:
        assert runtime.people.get(ada).status is PersonStatus.DISABLED
        assert runtime.people.get(grace).status is PersonStatus.PENDING
    finally:
        runtime.close()


def test_disable_of_an_unknown_id(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["user", "disable", "--id", "per_nobody"], env=env)
    assert isinstance(result.exception, PersonNotFound)
