"""`consentry export-config` and `consentry apply` (both back-ends): the round trip is exact,
the plan without --yes changes nothing, a locked legal basis is refused and nothing is applied,
what the files lack is kept, files the API's bodies refuse are refused by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from consentry.app import create_app
from consentry.cli import app
from consentry.settings import Settings
from tests.conftest import MASTER_KEY, auth, fresh_pg_database

KINDS = ("purposes", "notices", "schemas", "vendors", "systems")


def env_of(settings: Settings) -> dict[str, str]:
    env = {
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        # The systems' endpoints are fictional names: not resolved, as on-premises receivers.
        "CONSENTRY_ALLOW_PRIVATE_ENDPOINTS": "1",
    }
    if settings.db:
        env["CONSENTRY_DB"] = settings.db
    return env


@pytest.fixture
def other(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """A second, empty server on the same back-end."""
    db = ""
    if settings.db:
        db = fresh_pg_database(request.getfixturevalue("pg_url"))
    return dataclasses.replace(settings, data_dir=tmp_path / "other", db=db)


@pytest.fixture
def source(settings: Settings) -> Iterator[TestClient]:
    configured = dataclasses.replace(settings, allow_private_endpoints=True)
    with TestClient(create_app(configured)) as client:
        yield client


def cli(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env_of(settings))


def put(client: TestClient, path: str, body: dict[str, Any]) -> None:
    resp = client.put(path, headers=auth(), json=body)
    assert resp.status_code in {200, 201}, resp.text


def configure(client: TestClient) -> None:
    put(
        client,
        "/v1/purposes/loyalty",
        {
            "name": "Loyalty programme",
            "legal_basis": "contract",
            "retention_days": 730,
            "data_use": "essential.service",
            "description": "Points and rewards: naïve café customers too.",
        },
    )
    put(
        client,
        "/v1/notices/main",
        {"version": "1", "text": "We use data.\nFor analytics.", "purposes": ["analytics"]},
    )
    put(
        client,
        "/v1/notices/main",
        {
            "version": "2",
            "text": "We use data.\n\nFor analytics and marketing.\n",
            "purposes": ["marketing", "analytics"],
        },
    )
    put(
        client,
        "/v1/schemas/page_view",
        {
            "purposes": ["analytics", "loyalty"],
            "fields": {
                "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
                "email": {
                    "type": "string",
                    "category": "user.contact.email",
                    "treatment": "pseudonymise",
                    "purposes": ["loyalty"],
                    "required": True,
                },
                "debug": {"type": "boolean", "category": "system.operations", "treatment": "drop"},
            },
        },
    )
    put(
        client,
        "/v1/vendors/warehouse-inc",
        {
            "name": "Warehouse Inc.",
            "dpa_signed_at": "2025-01-15",
            "ccpa_contract_at": "2025-01-15",
            "sub_processors": [
                {"name": "Cloud Co.", "region": "US", "authorised_at": "2025-01-15"}
            ],
            "certifications": ["ISO 27001"],
            "risk": "low",
            "reviewed_at": "2026-06-01",
        },
    )
    put(
        client,
        "/v1/systems/warehouse",
        {
            "name": "Warehouse",
            "kind": "webhook",
            "endpoint": "https://warehouse.example.com/hook",
            "purposes": ["analytics"],
            "data_categories": ["system.operations", "user.contact"],
            "region": "US",
            "transfer_mechanism": "dpf",
            "dpf_certified_until": "2030-01-31",
            "ccpa_role": "service_provider",
            "vendor": "warehouse-inc",
            "dpa_signed": True,
            "rights_endpoint": "https://warehouse.example.com/rights",
            "ack_hours": 48,
            "consent_events": True,
        },
    )


def read(directory: Path) -> dict[str, bytes]:
    return {kind: (directory / f"{kind}.yaml").read_bytes() for kind in KINDS}


def test_export_apply_to_an_empty_server_export_again_is_identical(
    source: TestClient, settings: Settings, other: Settings, tmp_path: Path
) -> None:
    configure(source)
    first, second = tmp_path / "first", tmp_path / "second"
    exported = cli(settings, "export-config", str(first))
    assert exported.exit_code == 0, exported.output
    files = {kind: yaml.safe_load(text) for kind, text in read(first).items()}
    assert files["purposes"]["loyalty"]["legal_basis"] == "contract"
    assert [v["version"] for v in files["notices"]["main"]] == ["1", "2"]
    assert "signing_secret" not in read(first)["systems"].decode()
    # A notice's text reads as written, a block of lines.
    assert "text: |" in read(first)["notices"].decode()

    applied = cli(other, "apply", str(first), "--yes")
    assert applied.exit_code == 0, applied.output
    assert "create  purpose  loyalty" in applied.output
    assert "create  vendor   warehouse-inc" in applied.output
    assert "create  system   warehouse" in applied.output
    assert "Signing secret of system warehouse (shown once): " in applied.output
    assert cli(other, "export-config", str(second)).exit_code == 0
    assert read(second) == read(first)

    # Applied again: nothing to do.
    again = cli(other, "apply", str(first), "--yes")
    assert again.exit_code == 0, again.output
    assert "0 to create, 0 to change, 0 refused, 0 kept" in again.output


def test_the_plan_without_yes_changes_nothing(
    source: TestClient, settings: Settings, other: Settings, tmp_path: Path
) -> None:
    configure(source)
    files, before, after = tmp_path / "files", tmp_path / "before", tmp_path / "after"
    assert cli(settings, "export-config", str(files)).exit_code == 0
    assert cli(other, "export-config", str(before)).exit_code == 0
    planned = cli(other, "apply", str(files))
    assert planned.exit_code == 0, planned.output
    assert "create  purpose  loyalty" in planned.output
    assert "create  notice   main" in planned.output
    assert "create  schema   page_view" in planned.output
    assert "Nothing was changed: run again with --yes" in planned.output
    assert "Signing secret" not in planned.output
    assert cli(other, "export-config", str(after)).exit_code == 0
    assert read(after) == read(before)


def test_a_locked_legal_basis_is_refused_and_nothing_is_applied(
    source: TestClient, settings: Settings, tmp_path: Path
) -> None:
    configure(source)
    files, after = tmp_path / "files", tmp_path / "after"
    assert cli(settings, "export-config", str(files)).exit_code == 0
    purposes = yaml.safe_load((files / "purposes.yaml").read_text())
    # Not used yet: its basis may still change (a new basis is a new purpose only once used).
    purposes["loyalty"]["legal_basis"] = "legitimate_interest"
    (files / "purposes.yaml").write_text(yaml.safe_dump(purposes))
    changed = cli(settings, "apply", str(files), "--yes")
    assert changed.exit_code == 0, changed.output
    assert "change  purpose  loyalty  (legal_basis)" in changed.output
    # Used: a grant under a notice that covers it locks the basis (API.md).
    put(
        source,
        "/v1/notices/loyalty",
        {"version": "1", "text": "Loyalty.", "purposes": ["loyalty"]},
    )
    purposes["loyalty"]["legal_basis"] = "contract"
    purposes["loyalty"]["retention_days"] = 365
    (files / "purposes.yaml").write_text(yaml.safe_dump(purposes))
    systems = yaml.safe_load((files / "systems.yaml").read_text())
    systems["warehouse"]["ack_hours"] = 24
    (files / "systems.yaml").write_text(yaml.safe_dump(systems))
    refused = cli(settings, "apply", str(files), "--yes")
    assert refused.exit_code == 1, refused.output
    assert "refuse  purpose  loyalty  (legal_basis_locked: " in refused.output
    assert "change  system   warehouse  (ack_hours)" in refused.output
    assert "Refused: nothing was changed." in refused.output
    # Nothing applied: neither the purpose nor the system's change.
    assert cli(settings, "export-config", str(after)).exit_code == 0
    now = yaml.safe_load((after / "purposes.yaml").read_text())["loyalty"]
    assert (now["legal_basis"], now["retention_days"]) == ("legitimate_interest", 730)
    assert yaml.safe_load((after / "systems.yaml").read_text())["warehouse"]["ack_hours"] == 48
    # The notice published outside the files is kept: apply deletes nothing.
    assert "keep    notice   loyalty  (not in the files; apply deletes nothing)" in refused.output


def test_entries_the_api_refuses_are_refused_by_name(settings: Settings, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "purposes.yaml").write_text(
        yaml.safe_dump(
            {"promo": {"name": "Promo", "legal_basis": "whim", "retention_days": 30}},
        )
    )
    (files / "schemas.yaml").write_text(
        yaml.safe_dump(
            {
                "click": {
                    "purposes": ["nothing"],
                    "fields": {
                        "x": {
                            "type": "string",
                            "category": "system.operations",
                            "treatment": "keep",
                        }
                    },
                }
            }
        )
    )
    result = cli(settings, "apply", str(files), "--yes")
    assert result.exit_code == 1, result.output
    assert "refuse  purpose  promo  (invalid_request: legal_basis: " in result.output
    assert "refuse  schema   click  (unknown_purpose: " in result.output
    # The default purposes are on the server, not in the files: kept.
    assert "keep    purpose  analytics" in result.output
    (files / "systems.yaml").write_text("warehouse: [unclosed")
    broken = cli(settings, "apply", str(files))
    assert broken.exit_code == 2
    assert "invalid_config_file" in broken.output


def test_a_system_endpoint_is_checked_as_put_checks_it(settings: Settings, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    body = {
        "name": "Inside",
        "kind": "webhook",
        "endpoint": "https://127.0.0.1/hook",
        "purposes": ["analytics"],
        "data_categories": ["system.operations"],
        "region": "EU",
        "transfer_mechanism": "none",
        "dpa_signed": True,
    }
    (files / "systems.yaml").write_text(yaml.safe_dump({"inside": body}))
    env = env_of(settings) | {"CONSENTRY_ALLOW_PRIVATE_ENDPOINTS": "0"}
    result = CliRunner().invoke(app, ["apply", str(files), "--yes"], env=env)
    assert result.exit_code == 1, result.output
    assert "refuse  system   inside  (endpoint_not_allowed: " in result.output
    # Allowed (tests, on-premises receivers), the same file applies.
    assert cli(settings, "apply", str(files), "--yes").exit_code == 0
