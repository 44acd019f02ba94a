"""GET/POST /v1/fideslang (both back-ends): the configuration as fideslang data uses, datasets
and systems; the export loads with fideslang's own parsers, an import into an empty server
exports the same YAML byte for byte, and a bad document is refused whole with problem+json."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from fideslang.models import Dataset, DataUse, System, Taxonomy
from fideslang.parse import load_manifests_into_taxonomy

from consentry.app import create_app
from consentry.settings import Settings
from tests.conftest import auth, fresh_pg_database
from tests.governance.test_datamap import CRM
from tests.http.test_conventions import assert_problem, make_key
from tests.ingest.test_pipeline import SCHEMA

YAML = {"Content-Type": "application/yaml"}
SUPPORT = {
    "name": "Support",
    "legal_basis": "contract",
    "retention_days": 730,
    "data_use": "essential.service",
    "description": "Answering the customer's own requests.",
    "retain_identities": True,
}
CHAT: dict[str, Any] = {
    "purposes": ["support", "analytics"],
    "fields": {
        "at": {"type": "timestamp", "category": "system.operations", "treatment": "keep"},
        "text": {
            "type": "string",
            "category": "user.content",
            "treatment": "redact",
            "purposes": ["support"],
            "required": True,
        },
        "score": {"type": "number", "category": "system.operations", "treatment": "keep"},
    },
}
KAFKA: dict[str, Any] = {
    "name": "Stream",
    "kind": "kafka",
    "endpoint": "kafkas://broker.example.com:9093/consented",
    "purposes": ["support"],
    "data_categories": ["user.content"],
    "region": "EU",
    "transfer_mechanism": "none",
    "dpa_signed": False,
}


@pytest.fixture
def other(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """A second, empty server on the same back-end."""
    db = fresh_pg_database(request.getfixturevalue("pg_url")) if settings.db else ""
    fresh = dataclasses.replace(settings, data_dir=tmp_path / "other", db=db)
    with TestClient(create_app(fresh)) as client:
        yield client


def configure(client: TestClient) -> None:
    assert client.put("/v1/purposes/support", headers=auth(), json=SUPPORT).status_code == 201
    assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
    assert client.put("/v1/schemas/chat", headers=auth(), json=CHAT).status_code == 201
    assert client.put("/v1/systems/crm", headers=auth(), json=CRM).status_code == 201
    assert client.put("/v1/systems/stream", headers=auth(), json=KAFKA).status_code == 201


def export(client: TestClient, key: str | None = None) -> str:
    resp = client.get("/v1/fideslang", headers=auth(key) if key else auth())
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/yaml; charset=utf-8"
    return resp.text


def post(client: TestClient, body: str | bytes, key: str | None = None) -> Any:
    return client.post("/v1/fideslang", headers=(auth(key) if key else auth()) | YAML, content=body)


def test_the_export_loads_with_fideslang(client: TestClient) -> None:
    configure(client)
    document = yaml.safe_load(export(client))
    taxonomy = load_manifests_into_taxonomy(document)
    assert isinstance(taxonomy, Taxonomy)
    uses = {u.fides_key: u for u in taxonomy.data_use}
    support = uses["essential.service.support"]
    assert isinstance(support, DataUse)
    assert support.parent_key == "essential.service"
    assert support.name == "Support"
    assert "consentry:legal_basis=contract" in (support.tags or [])
    assert "consentry:retain_identities=true" in (support.tags or [])
    datasets = {d.fides_key: d for d in taxonomy.dataset}
    chat = datasets["chat"]
    assert isinstance(chat, Dataset)
    # A purpose is a custom data use under its fideslang one (analytics: analytics.reporting).
    assert chat.data_uses == ["essential.service.support", "analytics.reporting.analytics"]
    [collection] = chat.collections
    fields = {f.name: f for f in collection.fields}
    assert fields["text"].data_categories == ["user.content"]
    assert fields["text"].data_uses == ["essential.service.support"]
    assert fields["score"].fides_meta is not None
    assert fields["score"].fides_meta.data_type == "float"
    assert datasets["page_view"].collections[0].fields[0].name == "card"
    systems = {s.fides_key: s for s in taxonomy.system}
    crm = systems["crm"]
    assert isinstance(crm, System)
    assert crm.system_type == "webhook"
    assert [d.data_use for d in crm.privacy_declarations] == [
        "analytics.reporting.analytics",
        "personalize.personalization",
    ]
    assert crm.privacy_declarations[0].data_categories == ["system.operations", "user.contact"]
    assert crm.privacy_declarations[0].legal_basis_for_processing is not None
    assert crm.meta is not None
    assert crm.meta["consentry"]["endpoint"] == CRM["endpoint"]
    assert "signing_secret" not in export(client)
    # Every role that reads the configuration reads it.
    assert export(client, make_key(client, "auditor")) == export(client)


def test_a_round_trip_through_an_empty_server_is_exact(
    client: TestClient, other: TestClient
) -> None:
    configure(client)
    first = export(client)
    before = export(other)
    assert first != before
    resp = post(other, first)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["schemas"] == ["chat", "page_view"]
    assert body["systems"] == ["crm", "stream"]
    assert "support" in body["purposes"]
    assert set(body["signing_secrets"]) == {"crm", "stream"}
    assert body["ignored"] == {}
    assert export(other) == first
    # Imported again: the same configuration, nothing created, no secret given out again.
    again = post(other, first).json()
    assert again["signing_secrets"] == {}
    assert export(other) == first
    # What was imported is the configuration its own routes show.
    got = other.get("/v1/schemas/chat", headers=auth()).json()
    assert got["fields"]["text"] == CHAT["fields"]["text"]
    crm = other.get("/v1/systems/crm", headers=auth()).json()
    assert {k: crm[k] for k in CRM} == CRM
    actions = [e["action"] for e in other.get("/v1/audit/entries", headers=auth()).json()["items"]]
    assert actions.count("fideslang:imported") == 2


def test_a_fides_dataset_without_consentry_details_keeps_nothing_personal(
    client: TestClient,
) -> None:
    document = {
        "dataset": [
            {
                "fides_key": "orders",
                "data_uses": ["analytics.reporting.analytics"],
                "collections": [
                    {
                        "name": "orders",
                        "fields": [
                            {"name": "email", "data_categories": ["user.contact.email"]},
                            {
                                "name": "total",
                                "data_categories": ["system.operations"],
                                "fides_meta": {"data_type": "float"},
                            },
                        ],
                    }
                ],
            }
        ],
        "organization": [{"fides_key": "default_organization"}],
    }
    resp = post(client, yaml.safe_dump(document))
    assert resp.status_code == 200, resp.text
    assert resp.json()["ignored"] == {"organization": 1}
    fields = client.get("/v1/schemas/orders", headers=auth()).json()["fields"]
    assert fields["email"]["treatment"] == "drop"
    assert fields["total"] == {
        "type": "number",
        "category": "system.operations",
        "treatment": "keep",
        "required": False,
    }


SYSTEM = {
    "fides_key": "crm",
    "name": "CRM",
    "system_type": "webhook",
    "privacy_declarations": [
        {
            "data_use": "analytics.reporting.analytics",
            "data_categories": ["user.contact"],
            "data_subjects": ["customer"],
        }
    ],
}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "malformed_yaml"),
        (b"system: [unclosed", 400, "malformed_yaml"),
        (b"\xff\xfe system: []", 400, "malformed_yaml"),
        (b"a: &x [1, 2]\nb: *x\n", 400, "malformed_yaml"),
        (b"[" * 5000, 400, "malformed_yaml"),
        (b"- just a list", 422, "invalid_fideslang"),
        (b"widgets: []", 422, "invalid_fideslang"),
        (b"system: {fides_key: crm}", 422, "invalid_fideslang"),
        # fideslang's models refuse it: a key with a space, a declaration without its use.
        (yaml.safe_dump({"system": [SYSTEM | {"fides_key": "c r m"}]}), 422, "invalid_fideslang"),
        (
            yaml.safe_dump(
                {"system": [SYSTEM | {"privacy_declarations": [{"data_categories": []}]}]}
            ),
            422,
            "invalid_fideslang",
        ),
        # Consentry cannot map it: no endpoint, no legal basis, a use that names no purpose.
        (yaml.safe_dump({"system": [SYSTEM]}), 422, "invalid_fideslang"),
        (yaml.safe_dump({"data_use": [{"fides_key": "loyalty"}]}), 422, "invalid_fideslang"),
        (
            yaml.safe_dump(
                {
                    "data_use": [
                        {
                            "fides_key": "loyalty",
                            "tags": ["consentry:legal_basis=consent", "consentry:retention_days=x"],
                        }
                    ]
                }
            ),
            422,
            "invalid_fideslang",
        ),
        (
            yaml.safe_dump(
                {
                    "system": [
                        SYSTEM
                        | {
                            "meta": {"consentry": {k: v for k, v in CRM.items() if k != "name"}},
                            "privacy_declarations": [
                                {
                                    "data_use": "marketing.advertising",
                                    "data_categories": ["user.contact"],
                                    "data_subjects": ["customer"],
                                }
                            ],
                        }
                    ]
                }
            ),
            422,
            "invalid_fideslang",
        ),
        # The rules of the PUT routes: an unknown field in meta.consentry, a bad region.
        (
            yaml.safe_dump(
                {"system": [SYSTEM | {"meta": {"consentry": dict(CRM, colour="blue")}}]}
            ),
            422,
            "invalid_fideslang",
        ),
        (
            yaml.safe_dump(
                {"system": [SYSTEM | {"meta": {"consentry": dict(CRM, region="MARS")}}]}
            ),
            422,
            "invalid_region",
        ),
    ],
)
def test_bad_documents_are_refused(
    client: TestClient, body: str | bytes, status: int, code: str
) -> None:
    before = export(client)
    assert_problem(post(client, body), status, code)
    assert export(client) == before


def test_an_import_is_all_or_nothing(client: TestClient) -> None:
    """A valid purpose and schema before an invalid system: none of them is written."""
    configure(client)
    document = yaml.safe_load(export(client))
    fresh = {
        "data_use": [
            u for u in document["data_use"] if u["fides_key"] == "essential.service.support"
        ],
        "dataset": [],
        "system": [],
    }
    fresh["data_use"][0]["name"] = "Support desk"
    broken = dict(document["system"][0])
    broken["meta"] = {"consentry": dict(broken["meta"]["consentry"], transfer_mechanism="magic")}
    fresh["system"] = [broken]
    assert_problem(post(client, yaml.safe_dump(fresh)), 422, "invalid_transfer_mechanism")
    assert client.get("/v1/purposes/support", headers=auth()).json()["name"] == "Support"


def test_media_type_and_roles(client: TestClient) -> None:
    body = yaml.safe_dump({"data_use": []})
    resp = client.post(
        "/v1/fideslang", headers=auth() | {"Content-Type": "text/plain"}, content=body
    )
    assert_problem(resp, 415, "unsupported_media_type")
    assert post(client, body).status_code == 200
    # JSON is YAML: a document sent as JSON is read the same.
    assert client.post("/v1/fideslang", headers=auth(), json={"data_use": []}).status_code == 200
    assert_problem(post(client, body, make_key(client, "auditor")), 403, "forbidden")
    assert_problem(post(client, body, make_key(client, "collector")), 403, "forbidden")
    big = b"data_use: []\n" + b"#" * 1_100_000
    assert_problem(post(client, big), 413, "payload_too_large")
