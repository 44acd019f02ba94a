"""Event schemas over HTTP (both back-ends): definition, validation, versions, compilation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.consent.models import LegalBasis, Purpose
from consentry.consent.policy import is_special_category
from consentry.errors import InvalidSchema, UnknownPurpose
from consentry.ingest.schemas import compile_schema, parse
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key

PAGE_VIEW: dict[str, Any] = {
    "purposes": ["analytics", "personalization"],
    "fields": {
        "url": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "required": True,
        },
        "email": {"type": "string", "category": "user.contact.email", "treatment": "pseudonymise"},
        "message": {
            "type": "string",
            "category": "user.content",
            "treatment": "redact",
            "purposes": ["personalization"],
        },
        "card": {"type": "string", "category": "user.financial", "treatment": "tokenise"},
        "debug": {"type": "boolean", "category": "system.operations", "treatment": "drop"},
        "at": {"type": "timestamp", "category": "system.operations", "treatment": "keep"},
        "count": {"type": "integer", "category": "system.operations", "treatment": "keep"},
        "amount": {"type": "number", "category": "user.financial", "treatment": "keep"},
    },
}


def put(client: TestClient, event_type: str, body: Any, key: str | None = None) -> Any:
    headers = auth(key) if key else auth()
    return client.put(f"/v1/schemas/{event_type}", headers=headers, json=body)


def test_put_get_list_and_versions(client: TestClient) -> None:
    resp = put(client, "page_view", PAGE_VIEW)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["version"] == 1
    assert body["purposes"] == ["analytics", "personalization"]
    assert body["fields"]["message"]["purposes"] == ["personalization"]
    assert body["fields"]["url"]["required"] is True
    again = put(client, "page_view", PAGE_VIEW)
    assert again.status_code == 200
    assert again.json()["version"] == 2
    got = client.get("/v1/schemas/page_view", headers=auth()).json()
    assert got == again.json()
    listed = client.get("/v1/schemas", headers=auth()).json()
    assert [item["event_type"] for item in listed["items"]] == ["page_view"]
    assert listed["next"] is None
    actions = [
        e["action"]
        for e in client.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()[
            "items"
        ]
    ]
    assert actions.count("schema:updated") == 2


def test_unknown_event_type_is_404(client: TestClient) -> None:
    assert_problem(client.get("/v1/schemas/nothing", headers=auth()), 404, "unknown_event_type")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"purposes": ["telepathy"]}, "unknown_purpose"),
        ({"purposes": []}, "invalid_request"),
        (
            {"fields": {"x": {"type": "string", "category": "user.nonsense", "treatment": "keep"}}},
            "invalid_category",
        ),
        (
            {
                "fields": {
                    "x": {"type": "integer", "category": "user.content", "treatment": "redact"}
                }
            },
            "invalid_schema",
        ),
        (
            {
                "fields": {
                    "bad name": {"type": "string", "category": "user.content", "treatment": "keep"}
                }
            },
            "invalid_schema",
        ),
        (
            {
                "fields": {
                    "x": {
                        "type": "string",
                        "category": "user.content",
                        "treatment": "keep",
                        "purposes": ["marketing"],
                    }
                }
            },
            "invalid_schema",
        ),
        (
            {"fields": {"x": {"type": "blob", "category": "user.content", "treatment": "keep"}}},
            "invalid_request",
        ),
        (
            {
                "fields": {
                    "x": {"type": "string", "category": "user.content", "treatment": "encrypt"}
                }
            },
            "invalid_request",
        ),
        (
            {
                "fields": {
                    "x": {
                        "type": "string",
                        "category": "user.content",
                        "treatment": "keep",
                        "colour": "red",
                    }
                }
            },
            "unknown_field",
        ),
    ],
)
def test_bad_definitions_are_refused(client: TestClient, change: dict[str, Any], code: str) -> None:
    resp = put(client, "page_view", PAGE_VIEW | change)
    assert_problem(resp, 422, code)
    assert_problem(client.get("/v1/schemas/page_view", headers=auth()), 404, "unknown_event_type")


def test_bad_event_type_is_refused(client: TestClient) -> None:
    assert_problem(put(client, "Page View", PAGE_VIEW), 422, "invalid_schema")


def test_only_configuration_roles_write_schemas(client: TestClient) -> None:
    collector = make_key(client, "collector")
    assert_problem(put(client, "page_view", PAGE_VIEW, collector), 403, "forbidden")
    assert put(client, "page_view", PAGE_VIEW, make_key(client, "dpo")).status_code == 201
    assert client.get("/v1/schemas/page_view", headers=auth(collector)).status_code == 200


PURPOSES = {
    "analytics": Purpose("analytics", "Analytics", LegalBasis.CONSENT, 30),
    "personalization": Purpose("personalization", "P", LegalBasis.CONSENT, 30),
}


def test_the_compiled_schema_refuses_unknown_missing_and_mistyped_fields() -> None:
    properties = compile_schema(parse("page_view", PAGE_VIEW, PURPOSES)).properties
    code, detail, ok, redacted = properties.check(
        b'{"url": "/home", "count": 2, "amount": 3, "at": "2026-11-01T10:00:00Z"}'
    )
    assert (code, detail, redacted) == (None, None, None)
    assert ok is not None
    assert ok["url"] == "/home"
    assert "email" not in ok
    assert ok["amount"] == 3.0
    assert type(ok["amount"]) is float
    assert ok["at"] == datetime(2026, 11, 1, 10, tzinfo=UTC)
    for raw, refusal in [
        (
            b'{"url": "/", "colour": "red"}',
            ("unknown_field", "properties: a property not in the schema"),
        ),
        (b'{"count": 1}', ("missing_field", "properties.url is required")),
        (
            b'{"url": "/", "count": "2"}',
            ("invalid_field", "properties.count: expected int, got str"),
        ),
        (
            b'{"url": "/", "debug": "yes"}',
            ("invalid_field", "properties.debug: expected bool, got str"),
        ),
        (
            b'{"url": "/", "at": "yesterday"}',
            ("invalid_field", "properties.at: expected an RFC 3339 time with a time zone"),
        ),
    ]:
        assert properties.check(raw) == (*refusal, None, None)


def test_parse_names_the_problem() -> None:
    with pytest.raises(UnknownPurpose):
        parse("x", {"purposes": ["marketing"], "fields": {}}, PURPOSES)
    with pytest.raises(InvalidSchema, match="at least one purpose"):
        parse("x", {"purposes": [], "fields": {}}, PURPOSES)


@pytest.mark.parametrize(
    ("category", "special"),
    [
        ("user.health_and_medical", True),
        ("user.health_and_medical.genetic", True),
        ("user.biometric.fingerprint", True),
        ("user.demographic.race_ethnicity", True),
        ("user.demographic.religious_belief", True),
        ("user.demographic.political_opinion", True),
        ("user.demographic.sexual_orientation", True),
        ("user.criminal_history", True),
        ("user.demographic.age_range", False),
        ("user.contact.email", False),
        ("system.operations", False),
    ],
)
def test_special_categories(category: str, special: bool) -> None:
    """API.md: Art. 9/10 special categories in fideslang terms."""
    assert is_special_category(category) is special


@pytest.mark.parametrize("name", ["__init__", "__dict__", "__class__", "_private", "__slots__"])
def test_field_names_start_with_a_letter(client: TestClient, name: str) -> None:
    fields = {name: {"type": "string", "category": "user.content", "treatment": "keep"}}
    resp = put(client, "page_view", {"purposes": ["analytics"], "fields": fields})
    assert_problem(resp, 422, "invalid_schema")
