"""PUT/GET/DELETE /v1/vendors (both back-ends): the Art. 28 register validated field by field,
changes audited and versioned, a vendor that systems name kept, and the register in the RoPA."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.configuration import config_version
from tests.conftest import auth
from tests.governance.test_datamap import CRM, put
from tests.http.test_conventions import assert_problem, make_key

ACME: dict[str, Any] = {
    "name": "Example CRM Inc.",
    "dpa_signed_at": "2025-01-15",
    "dpa_expires_at": "2099-01-15",
    "ccpa_contract_at": "2025-01-15",
    "sub_processors": [
        {"name": "Example Hosting GmbH", "region": "EU", "authorised_at": "2025-01-15"}
    ],
    "certifications": ["ISO 27001"],
    "risk": "medium",
    "reviewed_at": "2026-06-01",
}


def put_vendor(
    client: TestClient, vendor_id: str, body: dict[str, Any], key: str | None = None
) -> Any:
    return client.put(f"/v1/vendors/{vendor_id}", headers=auth(key) if key else auth(), json=body)


def test_create_read_replace_delete(client: TestClient) -> None:
    created = put_vendor(client, "acme", ACME)
    assert created.status_code == 201, created.text
    assert created.json() == {"vendor_id": "acme", **ACME, "dpa_in_force": True, "systems": []}
    replaced = put_vendor(client, "acme", ACME | {"risk": "high"})
    assert replaced.status_code == 200
    assert client.get("/v1/vendors/acme", headers=auth()).json()["risk"] == "high"
    listed = client.get("/v1/vendors", headers=auth()).json()
    assert [v["vendor_id"] for v in listed["items"]] == ["acme"]
    assert listed["next"] is None
    # Optional fields may be left out.
    minimal = {"name": "Example Ads LLC", "risk": "high", "reviewed_at": "2026-06-01"}
    got = put_vendor(client, "ads", minimal).json()
    assert got["dpa_signed_at"] is None
    assert got["sub_processors"] == []
    assert got["dpa_in_force"] is False
    assert client.delete("/v1/vendors/acme", headers=auth()).status_code == 204
    assert_problem(client.get("/v1/vendors/acme", headers=auth()), 404, "vendor_not_found")
    assert_problem(client.delete("/v1/vendors/acme", headers=auth()), 404, "vendor_not_found")


def test_a_vendor_named_by_a_system_stays(client: TestClient) -> None:
    assert put_vendor(client, "acme", ACME).status_code == 201
    assert put(client, "crm", CRM | {"vendor": "acme"}).status_code == 201
    assert client.get("/v1/vendors/acme", headers=auth()).json()["systems"] == ["crm"]
    problem = assert_problem(
        client.delete("/v1/vendors/acme", headers=auth()), 409, "vendor_in_use"
    )
    assert "crm" in str(problem["detail"])
    assert client.delete("/v1/systems/crm", headers=auth()).status_code == 204
    assert client.delete("/v1/vendors/acme", headers=auth()).status_code == 204


@pytest.mark.parametrize(
    ("vendor_id", "change", "code"),
    [
        ("Acme!", {}, "invalid_vendor"),
        ("acme", {"risk": "extreme"}, "invalid_vendor"),
        ("acme", {"dpa_signed_at": "15/01/2025"}, "invalid_vendor"),
        ("acme", {"dpa_signed_at": "2025-02-30"}, "invalid_vendor"),
        ("acme", {"dpa_expires_at": "2024-01-01"}, "invalid_vendor"),
        ("acme", {"dpa_signed_at": None}, "invalid_vendor"),
        ("acme", {"reviewed_at": "soon"}, "invalid_vendor"),
        ("acme", {"ccpa_contract_at": "2025-13-01"}, "invalid_vendor"),
        (
            "acme",
            {"sub_processors": [{"name": "X", "region": "MARS", "authorised_at": "2025-01-01"}]},
            "invalid_region",
        ),
        (
            "acme",
            {"sub_processors": [{"name": "X", "region": "US", "authorised_at": "never"}]},
            "invalid_vendor",
        ),
        ("acme", {"sub_processors": [{"name": "X", "region": "US"}]}, "invalid_request"),
        ("acme", {"name": ""}, "invalid_request"),
        ("acme", {"owner": "me"}, "unknown_field"),
        ("acme", {"certifications": "ISO"}, "invalid_request"),
    ],
)
def test_invalid_vendors_are_refused(
    client: TestClient, vendor_id: str, change: dict[str, Any], code: str
) -> None:
    assert_problem(put_vendor(client, vendor_id, ACME | change), 422, code)
    assert client.get("/v1/vendors", headers=auth()).json()["items"] == []


def test_changes_are_audited_and_bump_the_configuration(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.store.read() as conn:
        before = config_version(conn)
    put_vendor(client, "acme", ACME)
    put_vendor(client, "acme", ACME | {"risk": "low"})
    client.delete("/v1/vendors/acme", headers=auth())
    with runtime.store.read() as conn:
        assert config_version(conn) == before + 3
    entries = client.get("/v1/audit/entries", headers=auth()).json()["items"]
    vendor_entries = [e for e in entries if e["action"].startswith("vendor:")]
    assert [e["action"] for e in vendor_entries] == [
        "vendor:created",
        "vendor:updated",
        "vendor:deleted",
    ]
    assert vendor_entries[1]["details"]["risk"] == "low"
    assert vendor_entries[2]["details"] == {"vendor_id": "acme"}


def test_roles(client: TestClient) -> None:
    auditor = make_key(client, "auditor")
    assert_problem(put_vendor(client, "acme", ACME, auditor), 403, "forbidden")
    assert put_vendor(client, "acme", ACME, make_key(client, "dpo")).status_code == 201
    assert client.get("/v1/vendors/acme", headers=auth(auditor)).status_code == 200
    assert_problem(client.delete("/v1/vendors/acme", headers=auth(auditor)), 403, "forbidden")


def test_the_ropa_lists_the_processors(client: TestClient) -> None:
    put_vendor(client, "acme", ACME)
    put(client, "crm", CRM | {"vendor": "acme"})
    auditor = make_key(client, "auditor")
    body = client.get("/v1/ropa", headers=auth(auditor)).json()
    assert body["processors"] == [
        {
            "vendor_id": "acme",
            "name": "Example CRM Inc.",
            "role": "processor",
            "dpa_signed_at": "2025-01-15",
            "dpa_expires_at": "2099-01-15",
            "ccpa_contract_at": "2025-01-15",
            "sub_processors": [
                {"name": "Example Hosting GmbH", "region": "EU", "authorised_at": "2025-01-15"}
            ],
            "certifications": ["ISO 27001"],
            "risk": "medium",
            "reviewed_at": "2026-06-01",
            "systems": ["crm"],
        }
    ]
    analytics = next(a for a in body["activities"] if a["purpose"] == "analytics")
    assert analytics["recipients"] == [
        {"system_id": "crm", "region": "US", "transfer_mechanism": "dpf", "vendor": "acme"}
    ]
    text = client.get("/v1/ropa?format=csv", headers=auth(auditor)).text
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["purpose"] == "analytics")
    assert row["processors"] == (
        "acme (DPA 2025-01-15..2099-01-15, risk medium, sub-processors: Example Hosting GmbH EU)"
    )


def test_a_gateway_names_at_start_the_systems_naming_an_unregistered_vendor(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A system stored while `vendor` was free text names no registered vendor: it gets
    nothing (dpa_missing), and the gateway says which at its start."""
    with TestClient(create_app(settings)) as client:
        assert put(client, "crm", CRM).status_code == 201
        assert put_vendor(client, "acme", ACME).status_code == 201
        assert put(client, "warehouse", CRM | {"vendor": "acme"}).status_code == 201
    with (
        caplog.at_level(logging.WARNING, logger="consentry.app"),
        TestClient(create_app(settings)),
    ):
        pass
    (warned,) = [r.getMessage() for r in caplog.records if "vendor register" in r.getMessage()]
    assert "(dpa_missing): crm;" in warned
    assert "warehouse" not in warned
