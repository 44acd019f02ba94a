"""PUT/GET/DELETE /v1/systems (both back-ends): every field validated with its code, the
signing secret shown once and never stored in clear, changes audited and versioned."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.runtime import Runtime
from consentry.storage.configuration import config_version
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key

CRM: dict[str, Any] = {
    "name": "CRM",
    "kind": "webhook",
    "endpoint": "https://crm.example.com/consentry",
    "purposes": ["analytics", "personalization"],
    "data_categories": ["system.operations", "user.contact"],
    "region": "US",
    "transfer_mechanism": "dpf",
    "dpf_certified_until": "2027-09-30",
    "ccpa_role": "service_provider",
    "vendor": "Example CRM Inc.",
    "dpa_signed": True,
    "rights_endpoint": "https://crm.example.com/rights",
    "ack_hours": 48,
}


def put(client: TestClient, system_id: str, body: dict[str, Any], key: str | None = None) -> Any:
    return client.put(f"/v1/systems/{system_id}", headers=auth(key) if key else auth(), json=body)


def test_create_read_replace_delete(client: TestClient) -> None:
    created = put(client, "crm", CRM)
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body.pop("signing_secret")
    assert len(secret) >= 43
    assert body == {
        "system_id": "crm",
        **CRM,
        "tia_ref": None,
        "tcf_vendor_id": None,
        "consent_events": False,
    }
    replaced = put(client, "crm", CRM | {"ack_hours": 24})
    assert replaced.status_code == 200
    assert "signing_secret" not in replaced.json()
    got = client.get("/v1/systems/crm", headers=auth()).json()
    assert got["ack_hours"] == 24
    assert got["delivery"] == {"pending": 0, "dead": 0, "refused": {}}
    assert [s["system_id"] for s in client.get("/v1/systems", headers=auth()).json()["items"]] == [
        "crm"
    ]
    assert client.delete("/v1/systems/crm", headers=auth()).status_code == 204
    assert_problem(client.get("/v1/systems/crm", headers=auth()), 404, "system_not_found")
    assert_problem(client.delete("/v1/systems/crm", headers=auth()), 404, "system_not_found")


def test_changes_are_audited_and_bump_the_configuration(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.store.read() as conn:
        before = config_version(conn)
    put(client, "crm", CRM)
    put(client, "crm", CRM | {"name": "CRM 2"})
    client.delete("/v1/systems/crm", headers=auth())
    with runtime.store.read() as conn:
        assert config_version(conn) == before + 3
    entries = client.get("/v1/audit/entries", headers=auth()).json()["items"]
    actions = [e["action"] for e in entries if e["action"].startswith("system:")]
    assert actions == ["system:created", "system:updated", "system:deleted"]
    assert not any("signing_secret" in str(e["details"]) for e in entries)


def test_secret_is_never_stored_in_clear(client: TestClient) -> None:
    secret = put(client, "crm", CRM).json()["signing_secret"]
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.store.read() as conn:
        assert runtime.datamap.signing_secret(conn, "crm") == secret.encode()
    data_dir = runtime.settings.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_system_names_its_tcf_vendor_id(client: TestClient) -> None:
    """API.md, Client libraries: "a system with a `tcf_vendor_id` gets data only while that
    vendor has consent"; the id (a GVL vendor id, 1-65535) is kept, shown and changed."""
    created = put(client, "crm", CRM | {"tcf_vendor_id": 755})
    assert created.status_code == 201, created.text
    assert created.json()["tcf_vendor_id"] == 755
    assert client.get("/v1/systems/crm", headers=auth()).json()["tcf_vendor_id"] == 755
    assert put(client, "crm", CRM | {"tcf_vendor_id": 65535}).json()["tcf_vendor_id"] == 65535
    assert put(client, "crm", CRM).json()["tcf_vendor_id"] is None
    assert client.get("/v1/systems/crm", headers=auth()).json()["tcf_vendor_id"] is None


def test_a_system_asks_for_consent_events(client: TestClient) -> None:
    """API.md, Consent propagation: `consent_events` (default false) is kept, shown in the
    data map and changed; it is sent to the rights endpoint, so it needs one."""
    created = put(client, "crm", CRM | {"consent_events": True})
    assert created.status_code == 201, created.text
    assert created.json()["consent_events"] is True
    listed = client.get("/v1/systems", headers=auth()).json()["items"]
    assert [s["consent_events"] for s in listed] == [True]
    assert client.get("/v1/systems/crm", headers=auth()).json()["consent_events"] is True
    assert put(client, "crm", CRM).json()["consent_events"] is False
    assert client.get("/v1/systems/crm", headers=auth()).json()["consent_events"] is False
    without = CRM | {"consent_events": True, "rights_endpoint": None}
    assert_problem(put(client, "crm", without), 422, "invalid_system")
    assert client.get("/v1/systems/crm", headers=auth()).json()["consent_events"] is False


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"endpoint": "ftp://crm.example.com/x"}, "invalid_endpoint"),
        ({"endpoint": "crm.example.com/hook"}, "invalid_endpoint"),
        ({"endpoint": "https://user:pw@crm.example.com/hook"}, "invalid_endpoint"),
        ({"endpoint": "https:///nohost"}, "invalid_endpoint"),
        ({"endpoint": "https://crm.example.com:99999/x"}, "invalid_endpoint"),
        ({"rights_endpoint": "javascript:alert(1)"}, "invalid_endpoint"),
        ({"purposes": ["astrology"]}, "unknown_purpose"),
        ({"data_categories": ["user.favourite_colour"]}, "invalid_category"),
        ({"region": "MARS"}, "invalid_region"),
        ({"transfer_mechanism": "handshake"}, "invalid_transfer_mechanism"),
        ({"ccpa_role": "friend"}, "invalid_ccpa_role"),
        ({"kind": "carrier_pigeon"}, "invalid_system"),
        ({"dpf_certified_until": "next year"}, "invalid_system"),
        ({"dpf_certified_until": "2027-02-30"}, "invalid_system"),
        ({"dpa_signed": "yes"}, "invalid_request"),
        ({"ack_hours": 0}, "invalid_request"),
        ({"purposes": []}, "invalid_request"),
        ({"surprise": 1}, "unknown_field"),
        ({"tcf_vendor_id": 0}, "invalid_request"),
        ({"tcf_vendor_id": 65536}, "invalid_request"),
        ({"tcf_vendor_id": "755"}, "invalid_request"),
        ({"tcf_vendor_id": True}, "invalid_request"),
        ({"tcf_vendor_id": 7.5}, "invalid_request"),
        ({"consent_events": "yes"}, "invalid_request"),
        ({"consent_events": True, "rights_endpoint": None}, "invalid_system"),
    ],
)
def test_invalid_systems_are_refused(client: TestClient, change: dict[str, Any], code: str) -> None:
    assert_problem(put(client, "crm", CRM | change), 422, code)
    assert_problem(client.get("/v1/systems/crm", headers=auth()), 404, "system_not_found")


def test_invalid_system_id(client: TestClient) -> None:
    assert_problem(put(client, "Bad%20Id", CRM), 422, "invalid_system")


def test_kafka_endpoint_shape(client: TestClient) -> None:
    kafka = CRM | {"kind": "kafka", "endpoint": "kafkas://kafka.example.com:9093/consented"}
    assert put(client, "stream", kafka).status_code == 201
    # Plaintext only to a private cluster, and only where private endpoints are allowed.
    plain = kafka | {"endpoint": "kafka://kafka.example.com:9092/consented"}
    assert_problem(put(client, "stream2", plain), 422, "endpoint_not_allowed")
    assert_problem(
        put(client, "stream2", kafka | {"endpoint": "https://x.example.com/"}),
        422,
        "invalid_endpoint",
    )
    # One topic, named as Kafka allows, and a port.
    for endpoint in (
        "kafka://kafka.example.com/consented",
        "kafka://kafka.example.com:9092/",
        "kafka://kafka.example.com:9092/two/topics",
        "kafka://kafka.example.com:9092/sp%20ace",
        "kafka://kafka.example.com:9092/consented?acks=0",
        f"kafka://kafka.example.com:9092/{'t' * 250}",
        "kafkas://kafka.example.com/consented",
        "kafkas://kafka.example.com:9093/two/topics",
    ):
        assert_problem(
            put(client, "stream2", kafka | {"endpoint": endpoint}), 422, "invalid_endpoint"
        )
    assert (
        put(
            client, "stream3", kafka | {"endpoint": f"kafkas://k.example.com:9093/{'t' * 249}"}
        ).status_code
        == 201
    )


def test_only_admin_and_dpo_change_systems(client: TestClient) -> None:
    dpo = make_key(client, "dpo")
    assert put(client, "crm", CRM, dpo).status_code == 201
    for role in ("collector", "operator", "analyst", "auditor"):
        key = make_key(client, role)
        assert_problem(put(client, "crm", CRM, key), 403, "forbidden")
        assert client.get("/v1/systems/crm", headers=auth(key)).status_code == 200
