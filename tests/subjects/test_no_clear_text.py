"""No identity value is ever stored in clear: the raw SQLite files and every PostgreSQL column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import identities, metadata
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth, fresh_pg_database

# (type, value as sent); fictional people only.
PEOPLE: list[list[tuple[str, str]]] = [
    [("email", "Zoe.Quintero@Example.com"), ("phone", "+44 7700 900123")],
    [("email", "marcus.okafor@example.com"), ("customer_id", "CUST-884213")],
    [("phone", "+1 (201) 555-0147"), ("customer_id", "Acct-Prism-5521")],
    [
        ("email", "  LENA.VOSS@EXAMPLE.COM "),
        ("phone", "+44 7700 900987"),
        ("device_id", "dev-7f3a9c2e41"),
    ],
]

# Every form in which a value could leak: as sent, trimmed, lower-cased, E.164, digits only,
# the national number, and distinctive parts of it.
NEEDLES = [
    "Zoe.Quintero@Example.com",
    "zoe.quintero@example.com",
    "zoe.quintero",
    "Zoe.Quintero",
    "+447700900123",
    "447700900123",
    "07700900123",
    "7700 900123",
    "7700900123",
    "marcus.okafor@example.com",
    "marcus.okafor",
    "CUST-884213",
    "cust-884213",
    "884213",
    "+12015550147",
    "12015550147",
    "2015550147",
    "555-0147",
    "Acct-Prism-5521",
    "acct-prism-5521",
    "Prism-5521",
    "LENA.VOSS@EXAMPLE.COM",
    "lena.voss@example.com",
    "lena.voss",
    "+447700900987",
    "447700900987",
    "7700900987",
    "dev-7f3a9c2e41",
    "7f3a9c2e41",
]


def needle_bytes() -> dict[bytes, str]:
    """Each searched byte string, labelled with the text and encoding it stands for."""
    forms = {}
    for needle in NEEDLES:
        for text in (needle, needle.lower(), needle.upper()):
            for encoding in ("utf-8", "utf-16-le"):
                forms[text.encode(encoding)] = f"{text} ({encoding})"
    return forms


NEEDLE_BYTES = needle_bytes()


def found_in(blob: bytes) -> list[str]:
    return [label for needle, label in NEEDLE_BYTES.items() if needle in blob]


def create_people(client: TestClient) -> list[str]:
    ids = []
    for person in PEOPLE:
        body = {"subject": {"identities": [{"type": t, "value": v} for t, v in person]}}
        resp = client.post("/v1/subjects", headers=auth(), json=body)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["subject_id"])
    # Touch every path that writes: a lookup, a link, a jurisdiction change, a refused merge,
    # an audit read.
    again = {"subject": {"identities": [{"type": "email", "value": "zoe.quintero@example.com"}]}}
    assert client.post("/v1/subjects", headers=auth(), json=again).status_code == 200
    link = {
        "subject": {
            "identities": [
                {"type": "customer_id", "value": "CUST-884213"},
                {"type": "account_id", "value": "Acct-Prism-5521"},
            ]
        },
        "jurisdiction": "UK",
    }
    assert client.post("/v1/subjects", headers=auth(), json=link).status_code == 200
    clash = {
        "subject": {
            "identities": [
                {"type": "email", "value": "marcus.okafor@example.com"},
                {"type": "phone", "value": "+44 7700 900987"},
            ]
        }
    }
    assert client.post("/v1/subjects", headers=auth(), json=clash).status_code == 409
    assert client.get("/v1/audit/entries", headers=auth()).status_code == 200
    return ids


def assert_stored_and_readable(runtime: Runtime, ids: list[str]) -> None:
    """The data is really there (sealed): the search below is not vacuous."""
    with runtime.store.read() as conn:
        stored = conn.execute(select(identities)).all()
        values = {i.value for s in ids for i in runtime.subjects.identities(conn, s)}
    assert len(stored) == 10
    assert {"zoe.quintero@example.com", "+447700900123", "CUST-884213", "+12015550147"} <= values
    assert "lena.voss@example.com" in values


def sqlite_files(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}


def test_needles_are_found_when_present() -> None:
    blob = b"\x00\x01" + "Zoe.Quintero@Example.com".encode("utf-16-le") + b"+447700900123"
    found = found_in(blob)
    assert "Zoe.Quintero@Example.com (utf-16-le)" in found
    assert "+447700900123 (utf-8)" in found
    assert found_in(b"sub_0123 CUST-88421 7700 90012") == []


def test_sqlite_files_hold_no_identity_in_clear(sqlite_settings: Settings) -> None:
    data_dir = sqlite_settings.data_dir
    with TestClient(create_app(sqlite_settings)) as client:
        ids = create_people(client)
        assert_stored_and_readable(client.app.state.runtime, ids)
        files = sqlite_files(data_dir)
        assert "consentry.db" in files
        assert "consentry.db-wal" in files  # WAL mode: recent pages live here
        for name, blob in files.items():
            assert found_in(blob) == [], name
    # After shutdown the WAL is checkpointed into the main file: search again.
    files = sqlite_files(data_dir)
    assert files
    for name, blob in files.items():
        assert found_in(blob) == [], name


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        db=fresh_pg_database(pg_url),
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
    )


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def test_postgresql_columns_hold_no_identity_in_clear(pg_settings: Settings) -> None:
    with TestClient(create_app(pg_settings)) as client:
        ids = create_people(client)
        runtime = client.app.state.runtime
        assert_stored_and_readable(runtime, ids)
        searched = 0
        with runtime.store.read() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(select(table)).all():
                    for column, value in zip(table.columns, row, strict=True):
                        if value is None:
                            continue
                        searched += 1
                        assert found_in(as_bytes(value)) == [], f"{table.name}.{column.name}"
        assert searched > 100
