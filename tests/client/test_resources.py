"""The client's other resources against a real gateway: reads, audit, the data map, API keys,
incidents; and a role's refusal mapped to its code."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from consentry.client import AsyncClient, Client, ConsentryAPIError, identity
from tests.client.conftest import NOTICE, page_view, person
from tests.conftest import ADMIN_KEY
from tests.servers import LiveServer

WAREHOUSE = {
    "name": "Warehouse",
    "kind": "webhook",
    "endpoint": "https://warehouse.example.com/consentry",
    "purposes": ["analytics"],
    "data_categories": ["system.operations"],
    "region": "EU",
    "transfer_mechanism": "none",
    "dpa_signed": True,
}


def test_reads_count_and_export_what_consent_allows(client: Client) -> None:
    people = [person() for _ in range(5)]  # a count drawn from fewer would be suppressed
    for email in people:
        client.consents.grant(identity("email", email), ["analytics"], notice=NOTICE)
    assert client.events.send([page_view(e, n) for n, e in enumerate(people)])["accepted"] == 5
    answer = client.reads.query("analytics", event_type="page_view", metric="count_subjects")
    assert answer["rows"][0]["value"] >= 5
    assert answer["policy_version"] >= 1
    export = client.reads.create_export("analytics", event_type="page_view")
    assert client.reads.get_export(export["export_id"])["purpose"] == "analytics"
    lines = client.reads.download_export(export["export_id"]).splitlines()
    assert len(lines) >= 5


def test_the_audit_log_verifies_its_head(client: Client) -> None:
    head = client.audit.head()
    assert head["size"] >= 1
    assert head["kid"] in {k["kid"] for k in client.audit.jwks()["keys"]}
    entries = client.audit.entries(limit=2)
    assert [e["index"] for e in entries["items"]] == [0, 1]
    proof = client.audit.inclusion_proof(0, head["size"])
    assert proof["tree_size"] == head["size"]
    assert client.audit.consistency_proof(1, head["size"])["second"] == head["size"]


def test_the_data_map_and_ropa(client: Client) -> None:
    created = client.systems.put("warehouse", WAREHOUSE)
    assert created["system_id"] == "warehouse"
    assert client.systems.get("warehouse")["region"] == "EU"
    assert "warehouse" in {s["system_id"] for s in client.systems.list()["items"]}
    assert client.systems.ropa()["activities"]
    client.systems.delete("warehouse")
    with pytest.raises(ConsentryAPIError) as gone:
        client.systems.get("warehouse")
    assert (gone.value.status, gone.value.code) == (404, "system_not_found")


VENDOR = {
    "name": "Example Warehouse Inc.",
    "dpa_signed_at": "2025-01-15",
    "risk": "low",
    "reviewed_at": "2026-06-01",
}


def test_the_vendor_register(client: Client, gateway: LiveServer) -> None:
    assert client.vendors.put("warehouse-inc", VENDOR)["dpa_in_force"] is True
    client.systems.put("warehouse", WAREHOUSE | {"vendor": "warehouse-inc"})
    assert client.vendors.get("warehouse-inc")["systems"] == ["warehouse"]
    assert "warehouse-inc" in {v["vendor_id"] for v in client.vendors.list()["items"]}
    with pytest.raises(ConsentryAPIError) as named:
        client.vendors.delete("warehouse-inc")
    assert (named.value.status, named.value.code) == (409, "vendor_in_use")
    client.systems.delete("warehouse")

    async def run() -> None:
        async with AsyncClient(gateway.url, ADMIN_KEY) as aclient:
            assert (await aclient.vendors.get("warehouse-inc"))["risk"] == "low"
            assert await aclient.vendors.put("warehouse-inc", VENDOR | {"risk": "high"})
            assert (await aclient.vendors.list())["items"]
            await aclient.vendors.delete("warehouse-inc")

    asyncio.run(run())
    with pytest.raises(ConsentryAPIError) as gone:
        client.vendors.get("warehouse-inc")
    assert (gone.value.status, gone.value.code) == (404, "vendor_not_found")


def test_a_role_without_the_right_is_refused_with_forbidden(
    client: Client, gateway: LiveServer
) -> None:
    assert client.api_keys.me()["role"] == "admin"
    minted = client.api_keys.create("collector", "checkout")
    assert "key" in minted
    with Client(gateway.url, minted["key"]) as collector:
        assert collector.api_keys.me()["role"] == "collector"
        with pytest.raises(ConsentryAPIError) as refused:
            collector.audit.head()
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert client.api_keys.revoke(minted["key_id"])["revoked_at"] is not None


def test_an_incident_from_report_to_close(gateway: LiveServer) -> None:
    aware = datetime.now(UTC) - timedelta(hours=1)

    async def scenario() -> None:
        async with AsyncClient(gateway.url, ADMIN_KEY) as api:
            incident = await api.incidents.create(
                {
                    "detected_at": aware,
                    "aware_at": aware,
                    "description": "A laptop with an export was lost.",
                    "nature": "confidentiality",
                    "data_categories": ["user.contact.email"],
                    "risk": "risk",
                    "keys_compromised": False,
                }
            )
            incident_id = incident["incident_id"]
            await api.incidents.notify(incident_id, to="authority", at=datetime.now(UTC))
            assert (await api.incidents.get(incident_id))["incident_id"] == incident_id
            listed = await api.incidents.list()
            assert incident_id in {i["incident_id"] for i in listed["items"]}
            closed = await api.incidents.close(incident_id)
            assert closed["incident_id"] == incident_id
            assert (await api.compliance.summary(series="day"))["incidents"] is not None
            assert (await api.subjects.resolve(identity("email", "new@example.com")))["created"]

    asyncio.run(scenario())
