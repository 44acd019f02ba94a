"""Shared fixtures: settings and an HTTP client on each back-end (SQLite file, PostgreSQL)."""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from consentry.app import create_app
from consentry.people import passwords
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.engine import Store
from consentry.storage.migrate import upgrade
from tests import pgcluster

ADMIN_KEY = "test-admin-key-0123456789abcdef0123456789abcdef"
# A fixed key-encryption key for tests (32 bytes, base64url).
MASTER_KEY = "dGVzdC1tYXN0ZXIta2V5LW5vdC1mb3ItcHJvZC11c2U"
TEMPLATE = "consentry_template"
BACKENDS = ("sqlite", "postgresql")
# The loopback SMTP server's fixtures (mail_port, mailbox), for every test that reads mail; the
# Kafka broker's (kafka_bootstrap), for every test that produces or consumes records; and the
# SoftHSM2 token's, for the key tests. The log scan (tests/logscan.py) fails the run when a log
# record of the session holds a fictional identity value.
pytest_plugins = ["tests.mailserver", "tests.kafka", "tests.softhsm", "tests.logscan"]

_db_names = itertools.count()

# CI replays the same examples every run, so a red build is reproducible; a developer's run
# keeps searching new ones (and a failure it finds becomes an @example in the test).
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its smallest cost in tests (the product keeps argon2-cffi's defaults, which
    take some 50 ms a hash on purpose): tests sign in hundreds of times. Hashes made with the
    product's parameters still verify (argon2 reads them from the hash)."""
    monkeypatch.setattr(
        passwords,
        "PasswordHasher",
        functools.partial(PasswordHasher, time_cost=1, memory_cost=1024, parallelism=1),
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """Base URL of a throwaway cluster holding a migrated template database."""
    if not pgcluster.available():
        if os.environ.get("CONSENTRY_TEST_SKIP_PG") == "1":
            pytest.skip("PostgreSQL tests skipped by CONSENTRY_TEST_SKIP_PG=1")
        pytest.fail("PostgreSQL is not installed: `make test` installs it with apt-get")
    with pgcluster.cluster() as base:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        store = Store(f"postgresql+psycopg://{base.removeprefix('postgresql://')}/{TEMPLATE}")
        upgrade(store)
        store.close()
        yield base


def fresh_pg_database(base: str) -> str:
    """A new database cloned from the migrated template; returns its URL."""
    name = f"t{os.getpid()}_{next(_db_names)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return f"{base}/{name}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def key_source() -> str:
    """Where the key-encryption key comes from: CONSENTRY_MASTER_KEY. The key and erasure
    tests override this with ("env", "pkcs11") to run through a SoftHSM2 token as well."""
    return "env"


@pytest.fixture
def settings(
    backend: str, key_source: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    """Settings for a fresh store on the back-end and key source under test."""
    db = ""
    if backend == "postgresql":
        db = fresh_pg_database(request.getfixturevalue("pg_url"))
    if key_source == "pkcs11":
        token = request.getfixturevalue("softhsm")
        return Settings(
            data_dir=tmp_path / "data",
            db=db,
            admin_key=ADMIN_KEY,
            pkcs11_module=token.module,
            pkcs11_token=token.label,
            pkcs11_pin=token.pin,
            pkcs11_key_label=token.key_label(),
        )
    return Settings(data_dir=tmp_path / "data", db=db, admin_key=ADMIN_KEY, master_key=MASTER_KEY)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, master_key=MASTER_KEY)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The services in process, on the back-end under test."""
    rt = Runtime(settings)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def sqlite_runtime(sqlite_settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(sqlite_settings)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An in-process HTTP client whose app has run its start-up (storage, keys)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def auth(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
