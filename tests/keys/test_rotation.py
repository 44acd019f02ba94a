"""keys/rotation.py and `consentry keys rotate`: what was written before a master and a signing
rotation stays readable and verifiable after it, and a rotation killed half way resumes."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from consentry import clock
from consentry.app import create_app
from consentry.audit import log as audit_log
from consentry.cli import app as cli
from consentry.errors import InvalidSetting
from consentry.keys.rotation import GRACE_SECONDS, MasterRotation
from consentry.keys.sources import MASTER_KEY_FILE
from consentry.keys.subject_keys import subject_key_aad
from consentry.operations import figures
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import keys as keys_sql
from consentry.storage.dialect import database_url
from consentry.storage.engine import Store
from consentry.storage.schema import master_keys, retained, signing_keys, subject_keys
from tests.conftest import auth
from tests.dsr.conftest import email, grant, request, run, runtime_of, send
from tests.dsr.conftest import ready as ready  # noqa: PLC0414 - the fixture, used here as well
from tests.reads.conftest import events as read_events

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(params=("file", "pkcs11"))
def key_source(request: pytest.FixtureRequest) -> str:
    """The key sources a rotation adds a key to by itself: the development file and a token."""
    return str(request.param)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, master_key="", dsr_poll_seconds=0, allow_private_endpoints=True
    )


def env_of(settings: Settings) -> dict[str, str]:
    env = {
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_DB": settings.db,
        "CONSENTRY_ADMIN_KEY": settings.admin_key,
    }
    for name in ("master_key", "pkcs11_module", "pkcs11_token", "pkcs11_pin", "pkcs11_key_label"):
        value = getattr(settings, name)
        if value:
            env["CONSENTRY_" + name.upper()] = value
    return env


def rotate(settings: Settings, which: str, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["keys", "rotate", which, *extra], env=env_of(settings))
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def verify_head(head: dict[str, Any], jwks: dict[str, Any]) -> None:
    """The head's Ed25519 signature checks out under the JWKS key its kid names."""
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == head["kid"]]
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    signed = {k: head[k] for k in ("size", "root_hash", "signed_at")}
    message = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    public.verify(base64.urlsafe_b64decode(head["signature"] + "=="), message)


def kek_ids(rt: Runtime) -> set[str]:
    with rt.store.read() as conn:
        return keys_sql.wrapped_kek_ids(conn)


def test_everything_written_before_rotations_stays_readable_and_verifiable(
    ready: TestClient, settings: Settings
) -> None:
    # Before: events, a consent token, a signed audit head, an erasure's retained items, an
    # identity secret and a downstream system's secret.
    kept = email("kit")
    kept_id = grant(ready, kept, "analytics")
    token = ready.get(f"/v1/subjects/{kept_id}/consent/token", headers=auth()).json()["token"]
    assert send(ready, kept, 5, "kit", topic="chat-before", message="hello")["accepted"] == 5
    gone = email("nora")
    grant(ready, gone, "analytics")
    assert send(ready, gone, 2, "nora", topic="invoice")["accepted"] == 2
    erased = request(
        ready,
        {
            "type": "erasure",
            "subject": gone,
            "jurisdiction": "EU",
            "verification": {"method": "id_document", "level": "high"},
        },
    )["request_id"]
    run(ready)
    head_before = ready.get("/v1/audit/head", headers=auth()).json()
    old_kid = head_before["kid"]
    old_kek = runtime_of(ready).kek.kek_id
    env = env_of(settings)
    made = CliRunner().invoke(cli, ["identity-secret", "create", "--label", "shop"], env=env)
    assert made.exit_code == 0, made.output

    master = rotate(settings, "master", "--settle", "0", "--grace", "0")
    signing = rotate(settings, "signing")
    assert master["kek_id"] != old_kek
    assert master["retired"] == [old_kek]
    assert master["rewrapped"] > 0
    if settings.pkcs11_module:
        assert not (settings.data_dir / MASTER_KEY_FILE).exists()
    else:  # the development file now holds the new key only
        assert len((settings.data_dir / MASTER_KEY_FILE).read_text().split()) == 1

    with TestClient(create_app(settings)) as after:
        rt = runtime_of(after)
        assert rt.kek.kek_id == master["kek_id"]
        assert kek_ids(rt) == {master["kek_id"]}
        with rt.store.read() as conn:
            noted = conn.execute(select(master_keys)).all()
        assert {(r.kek_id, r.retired_at is None) for r in noted} == {
            (old_kek, False),
            (master["kek_id"], True),
        }
        # Events open under subject keys re-wrapped under the new KEK.
        mine = [e for e in read_events(after, "analytics") if e["event_id"].startswith("kit-")]
        assert len(mine) == 5
        assert all(e["properties"]["message"] == "hello" for e in mine)
        # The old token verifies under the JWKS, which publishes old and new signing keys,
        # and is still accepted with an event.
        jwks = after.get("/.well-known/jwks.json").json()
        kids = {k["kid"] for k in jwks["keys"]}
        assert {old_kid, signing["kid"]} <= kids
        header = jwt.get_unverified_header(token)
        assert header["kid"] == old_kid
        sent = after.post(
            "/v1/events",
            headers=auth(),
            json={
                "events": [
                    {
                        "event_id": "kit-token",
                        "event_type": "chat",
                        "occurred_at": "2026-11-20T10:00:00Z",
                        "subject": kept,
                        "consent_token": token,
                        "properties": {"topic": "after"},
                    }
                ]
            },
        ).json()
        assert sent["accepted"] == 1, sent
        # The head signed before still verifies; new heads are signed with the new key.
        verify_head(head_before, jwks)
        head_after = after.get("/v1/audit/head", headers=auth()).json()
        verify_head(head_after, jwks)
        assert head_after["kid"] == signing["kid"]
        # What the erasure retained still opens under the (re-wrapped) retention key.
        with rt.store.read() as conn:
            rows = conn.execute(
                select(retained)
                .where(retained.c.request_id == erased)
                .order_by(retained.c.retained_id)
            ).all()
        assert rows
        for n, row in enumerate(rows):
            json.loads(
                rt.erasure.retention.open(
                    bytes(row.sealed), f"consentry:retained:{erased}:{n}".encode()
                )
            )
        # The identity secret made before opens (it vouches) after.
        assert rt.identity_secrets._opened()
    checkpoint = settings.data_dir.parent / "head.json"
    checkpoint.write_text(json.dumps(head_before))
    verified = CliRunner().invoke(
        cli, ["audit", "verify", "--checkpoint", str(checkpoint)], env=env
    )
    assert verified.exit_code == 0, verified.output


def _subjects(settings: Settings, count: int) -> None:
    rt = Runtime(settings)
    try:
        for start in range(0, count, 500):
            with rt.store.write() as conn:
                for n in range(start, min(count, start + 500)):
                    rt.subject_keys.create(conn, f"sub-{n:06d}")
    finally:
        rt.close()


def _under(settings: Settings, kek_id: str) -> int:
    """Subject keys wrapped under `kek_id`, read without opening a runtime."""
    store = Store(database_url(settings))
    try:
        with store.read() as conn:
            stmt = select(func.count()).where(subject_keys.c.kek_id == kek_id)
            return int(conn.execute(stmt).scalar() or 0)
    finally:
        store.close()


def _kek_id(settings: Settings) -> str:
    rt = Runtime(settings)
    try:
        return rt.kek.kek_id
    finally:
        rt.close()


def _spawn(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **env_of(settings)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-c", "from consentry.cli import main; main()", "keys", "rotate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def test_a_rotation_killed_half_way_resumes_with_ingest_running(
    ready: TestClient, settings: Settings
) -> None:
    count = 3_000
    _subjects(settings, count)
    old = runtime_of(ready).kek.kek_id
    rotation = _spawn(settings, "master", "--batch", "5", "--settle", "0", "--grace", "0")
    # Ingest and erasure go on in this process while the rotation runs in another.
    sent = 0
    killed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        subject = email(f"during{sent}")
        grant(ready, subject, "analytics")
        assert send(ready, subject, 1, f"during{sent}", topic="chat")["accepted"] == 1
        sent += 1
        if _under(settings, old) < count - 100:
            rotation.send_signal(signal.SIGKILL)
            killed = True
            break
    rotation.communicate()
    assert killed, "the rotation ended before it could be stopped half way"
    assert _under(settings, old) > 0  # stopped half way

    # Reads and ingest keep working between the runs (rows under both keys).
    subject = email("between")
    grant(ready, subject, "analytics")
    assert send(ready, subject, 1, "between", topic="chat")["accepted"] == 1
    erased = request(
        ready,
        {
            "type": "erasure",
            "subject": email("during0"),
            "jurisdiction": "EU",
            "verification": {"method": "id_document", "level": "high"},
        },
    )
    run(ready)
    assert erased["request_id"]

    again = _spawn(settings, "master", "--settle", "0", "--grace", "0")
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0
    outcome = json.loads(out.decode().strip().splitlines()[-1])
    assert outcome["retired"] == [old]

    with TestClient(create_app(settings)) as after:
        rt = runtime_of(after)
        assert kek_ids(rt) == {outcome["kek_id"]}
        with rt.store.read() as conn:
            opened = rt.subject_keys.open_many(conn, [f"sub-{n:06d}" for n in range(count)])
        assert len(opened) == count
        ids = {e["event_id"] for e in read_events(after, "analytics")}
        assert {f"during{n}-0" for n in range(1, sent)} <= ids
        assert "between-0" in ids
        assert "during0-0" not in ids  # erased during the rotation: stays erased


def test_an_env_key_source_rotates_onto_the_key_put_first(
    sqlite_settings: Settings,
) -> None:
    new = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    _subjects(sqlite_settings, 10)
    old = _kek_id(sqlite_settings)
    refused = CliRunner().invoke(cli, ["keys", "rotate", "master"], env=env_of(sqlite_settings))
    assert isinstance(refused.exception, InvalidSetting)
    assert "CONSENTRY_MASTER_KEY=new,current" in refused.exception.detail
    both = dataclasses.replace(sqlite_settings, master_key=f"{new},{sqlite_settings.master_key}")
    result = CliRunner().invoke(
        cli, ["keys", "rotate", "master", "--settle", "0", "--grace", "0"], env=env_of(both)
    )
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout.strip().splitlines()[-1])
    assert done["rewrapped"] > 10
    assert done["retired"] == [old]
    assert "remove that key from CONSENTRY_MASTER_KEY" in " ".join(result.output.split())
    # The new key alone now opens everything.
    alone = dataclasses.replace(sqlite_settings, master_key=new)
    assert _under(alone, done["kek_id"]) == 10


def test_signing_rotation_is_audited_and_publishes_both_keys(
    client: TestClient, settings: Settings
) -> None:
    before = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    made = rotate(settings, "signing")
    time.sleep(2.1)  # the server reads the signing keys again after ring.REFRESH_SECONDS
    after = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert after == before | {made["kid"]}
    entries = client.get("/v1/audit/entries?limit=1000", headers=auth()).json()["items"]
    assert [e["details"]["kid"] for e in entries if e["action"] == "keys:signing:rotated"] == [
        made["kid"]
    ]


def test_rotation_due_clears_once_the_master_key_is_rotated(sqlite_settings: Settings) -> None:
    settings = dataclasses.replace(sqlite_settings, master_key="")
    rt = Runtime(settings)
    try:
        old_kek = rt.kek.kek_id
        with rt.store.write() as conn:
            old = clock.now() - timedelta(days=100)
            conn.execute(update(master_keys).values(created_at=old))
            conn.execute(update(signing_keys).values(created_at=old))
        with rt.store.read() as conn:
            assert figures.keys_due(conn, clock.now(), 90) == ["master", "signing"]
    finally:
        rt.close()
    done = rotate(settings, "master", "--settle", "0", "--grace", "0")
    rotate(settings, "signing")
    rt = Runtime(settings)
    try:
        with rt.store.read() as conn:
            assert figures.keys_due(conn, clock.now(), 90) == []
            assert figures.key_ages(conn, clock.now())["master"] < 60
            logged = [e for e, _ in audit_log.entries(conn, limit=1000)]
    finally:
        rt.close()
    # The rotation leaves its trace: the new key started, the old one retired (destroyed).
    started = [e.details for e in logged if e.action == "keys:master:rotation_started"]
    retired = [e.details for e in logged if e.action == "keys:master:retired"]
    assert started == [{"kek_id": done["kek_id"], "source": "file"}]
    assert retired == [{"kek_id": old_kek, "destroyed": True}]
    assert done["retired"] == [old_kek]


def test_a_rotation_stopped_before_retiring_finishes_without_a_new_key(
    sqlite_settings: Settings,
) -> None:
    settings = dataclasses.replace(sqlite_settings, master_key="")
    _subjects(settings, 20)
    rt = Runtime(settings)
    try:
        old = rt.kek.kek_id
        rotation = MasterRotation(rt.store, rt.kek, actor="test", settle_seconds=0)
        new = rotation.start()
        rotation.rewrap()  # stopped here: everything re-wrapped, the old key not retired
    finally:
        rt.close()
    done = rotate(settings, "master", "--settle", "0", "--grace", "0")
    assert (done["kek_id"], done["retired"], done["rewrapped"]) == (new, [old], 0)


def test_a_row_committed_under_the_old_key_after_the_rewrap_keeps_its_key(
    settings: Settings,
) -> None:
    """A transaction opened before the rotation may commit a row wrapped under the old key
    after the re-wrap pass: the old key is only marked retiring, and a later run re-wraps the
    row, destroying the key only once the grace period has passed."""
    settings = dataclasses.replace(settings, master_key="")
    _subjects(settings, 3)
    rt = Runtime(settings)
    try:
        old = rt.kek.kek_id
        rotation = MasterRotation(rt.store, rt.kek, actor="test", settle_seconds=0)
        new = rotation.start()
        first = rotation.finish()
        assert (first.retired, first.retiring) == ((), (old,))
        assert old in rt.kek.key_ids

        # The late commit: a subject key wrapped under the old KEK, written after the pass.
        aad = subject_key_aad("sub-000001")
        with rt.store.write() as conn:
            row = conn.execute(
                select(subject_keys).where(subject_keys.c.subject_id == "sub-000001")
            ).one()
            key = rt.kek.open(bytes(row.wrapped_key), aad, row.kek_id)
            conn.execute(
                update(subject_keys)
                .where(subject_keys.c.subject_id == "sub-000001")
                .values(wrapped_key=rt.kek.source(old).wrap(key, aad), kek_id=old)
            )

        second = MasterRotation(rt.store, rt.kek, actor="test", settle_seconds=0).finish()
        assert (second.rewrapped, second.retired, second.retiring) == (1, (), (old,))
        assert old in rt.kek.key_ids

        with rt.store.write() as conn:  # the grace period has passed
            conn.execute(
                update(master_keys)
                .where(master_keys.c.kek_id == old)
                .values(retired_at=clock.now() - timedelta(seconds=GRACE_SECONDS + 1))
            )
        third = MasterRotation(rt.store, rt.kek, actor="test", settle_seconds=0).finish()
        assert (third.kek_id, third.retired, third.retiring) == (new, (old,), ())
        assert rt.kek.key_ids == [new]
        with rt.store.read() as conn:
            row = conn.execute(
                select(subject_keys).where(subject_keys.c.subject_id == "sub-000001")
            ).one()
        assert row.kek_id == new
        assert rt.kek.open(bytes(row.wrapped_key), aad, row.kek_id) == key
    finally:
        rt.close()
