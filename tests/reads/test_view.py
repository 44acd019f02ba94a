"""reads/view.py, what a read shows (API.md "What a read shows"), both back-ends: every field
the reading purpose may see, sealed values opened with the subject's key; pseudonyms, tokens
and redacted text as stored; fields of other purposes and special categories left out unless
the purpose qualifies; nothing of an erased subject, in event pages and export downloads
alike."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from consentry.reads.view import SubjectNames
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import auth
from tests.ingest.test_pipeline import event, grant, send, who
from tests.reads.conftest import (
    CARE_NOTICE,
    EXPLICIT,
    PAGE_VIEW,
    events,
    special_purpose,
    view,
)
from tests.reads.test_query import dsr, withdraw

MESSAGE = "Call me on +44 7700 900123 about my order"


def download(client: TestClient, purpose: str, fmt: str = "jsonl", **filters: Any) -> str:
    made = client.post(
        "/v1/exports", headers=auth(), json={"purpose": purpose, "format": fmt} | filters
    )
    assert made.status_code == 200, made.text
    resp = client.get(f"/v1/exports/{made.json()['export_id']}/download", headers=auth())
    assert resp.status_code == 200, resp.text
    return resp.text


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_page_view_shows_its_page_redacted_message_and_email_pseudonym(
    shop: TestClient,
) -> None:
    """The example of the issue: a kept `page` (browsing history), a redacted `message` and a
    pseudonymised `email`, accepted for analytics, all come back for analytics."""
    grant(shop, who("ana"), "analytics")
    props = {
        "url": "/shop",
        "page": "/checkout",
        "message": MESSAGE,
        "email": "ana@example.com",
        "offer": "spring",
    }
    assert send(shop, [event("e1", who("ana"), properties=props)])[0]["status"] == "accepted"
    [item] = events(shop, "analytics")
    shown = item["properties"]
    assert set(shown) == {"url", "page", "message", "email"}
    assert shown["url"] == "/shop"
    assert shown["page"] == "/checkout"
    assert shown["message"] == "Call me on <PHONE> about my order"
    # The pseudonym as stored: a keyed hash, not the address.
    assert shown["email"]
    assert "@" not in shown["email"]
    assert "ana@example.com" not in json.dumps(item)


def test_fields_of_other_purposes_are_left_out(shop: TestClient) -> None:
    view(shop, "bo", 1, offer="spring")
    [analytics] = events(shop, "analytics")
    assert "offer" not in analytics["properties"]
    assert analytics["properties"]["page"] == "/checkout"
    [personal] = events(shop, "personalization")
    assert personal["properties"]["offer"] == "spring"
    assert personal["properties"]["page"] == "/checkout"


def test_special_categories_only_to_a_qualifying_purpose(shop: TestClient) -> None:
    """`condition` (health) is shown to care (explicit grant) and research (condition j), never
    to analytics; `note` only to care (its own purpose). When research later needs explicit
    consent (condition a), reads for it stop showing the health data of a subject whose grant
    was not explicit, though it was kept under the earlier rule."""
    grant(shop, who("lee"), "analytics", "care", "research", notice=CARE_NOTICE, **EXPLICIT)
    grant(shop, who("kim"), "analytics", "research", notice=CARE_NOTICE)
    props = {"url": "/clinic", "condition": "asthma", "note": "inhaler twice a day"}
    results = send(
        shop,
        [
            event("v-lee", who("lee"), event_type="visit", properties=props),
            event("v-kim", who("kim"), event_type="visit", properties=props),
        ],
    )
    assert [r["purposes"] for r in results] == [
        ["analytics", "care", "research"],
        ["analytics", "research"],
    ]

    def shown(purpose: str) -> dict[str, dict[str, Any]]:
        return {i["event_id"]: i["properties"] for i in events(shop, purpose, event_type="visit")}

    assert shown("analytics") == {"v-lee": {"url": "/clinic"}, "v-kim": {"url": "/clinic"}}
    assert shown("care") == {"v-lee": props}
    assert shown("research") == {
        "v-lee": {"url": "/clinic", "condition": "asthma"},
        "v-kim": {"url": "/clinic", "condition": "asthma"},
    }
    special_purpose(shop, "research", "a")
    assert shown("research") == {
        "v-lee": {"url": "/clinic", "condition": "asthma"},
        "v-kim": {"url": "/clinic"},
    }
    exported = {e["event_id"]: e["properties"] for e in jsonl(download(shop, "research"))}
    assert exported == shown("research")


def test_export_download_opens_sealed_values(shop: TestClient, settings: Settings) -> None:
    view(shop, "ana", 2, message=MESSAGE)
    view(shop, "bo", 1, page="/basket")
    lines = jsonl(download(shop, "analytics"))
    assert sorted(line["properties"]["page"] for line in lines) == [
        "/basket",
        "/checkout",
        "/checkout",
    ]
    assert {line["properties"].get("message") for line in lines} == {
        "Call me on <PHONE> about my order",
        None,
    }
    rows = list(csv.DictReader(io.StringIO(download(shop, "analytics", "csv"))))
    assert sorted(json.loads(r["properties"])["page"] for r in rows) == [
        "/basket",
        "/checkout",
        "/checkout",
    ]
    if settings.db == "":
        # Opened for the download only: no clear value in the store's files.
        files = b"".join(p.read_bytes() for p in Path(settings.data_dir).glob("consentry.db*"))
        assert b"/checkout" not in files
        assert b"<PHONE> about my order" not in files


def test_a_withdrawal_between_export_and_download_removes_the_subject(
    shop: TestClient,
) -> None:
    view(shop, "ana", 2)
    view(shop, "bo", 3, page="/basket")
    made = shop.post("/v1/exports", headers=auth(), json={"purpose": "analytics"}).json()
    assert made["rows_at_creation"] == 5
    withdraw(shop, "bo", "analytics")
    resp = shop.get(f"/v1/exports/{made['export_id']}/download", headers=auth())
    lines = jsonl(resp.text)
    assert [line["properties"]["page"] for line in lines] == ["/checkout", "/checkout"]
    assert all(line["event_id"].startswith("ana-") for line in lines)


def test_an_erased_subject_is_never_shown(shop: TestClient) -> None:
    view(shop, "ana", 1)
    view(shop, "cy", 2, page="/cy-private")
    assert sum(i["properties"]["page"] == "/cy-private" for i in events(shop, "analytics")) == 2
    made = shop.post("/v1/exports", headers=auth(), json={"purpose": "analytics"}).json()
    dsr(shop, "cy", "erasure", "high")
    # At once, before the runner has deleted anything.
    shown = events(shop, "analytics")
    assert [i["event_id"].split("-")[0] for i in shown] == ["ana"]
    text = shop.get(f"/v1/exports/{made['export_id']}/download", headers=auth()).text
    assert "cy-" not in text
    assert "/cy-private" not in text


def test_a_subject_whose_key_is_gone_is_never_shown(shop: TestClient) -> None:
    """Whatever the consent state says (here, a key destroyed without the subject being
    marked erased, as a torn state would leave it): without its key, nothing of the subject
    is shown, not even its values stored in clear."""
    view(shop, "ana", 1)
    view(shop, "cy", 1, email="cy@example.com")
    rt: Runtime = shop.app.state.runtime  # type: ignore[attr-defined]
    subject_id = grant(shop, who("cy"), "analytics")["subject_id"]
    with rt.store.write() as conn:
        assert rt.subject_keys.destroy(conn, subject_id)
    assert [i["event_id"].split("-")[0] for i in events(shop, "analytics")] == ["ana"]
    assert "cy-" not in download(shop, "analytics")


def test_a_schema_narrowed_since_hides_what_it_no_longer_allows(shop: TestClient) -> None:
    """Events stored while `page` was for every purpose, `message` redacted and `email`
    pseudonymised; then `page` is narrowed to personalization, `message` dropped and `email`
    taken out of the schema. Reads for analytics show none of the three, as group_by
    already refuses `page`; personalization still sees `page`. Events pages, both export
    formats alike (a group by `page` is refused, 422)."""
    view(shop, "ana", 2, message=MESSAGE, email="ana@example.com")
    narrowed = copy.deepcopy(PAGE_VIEW)
    narrowed["fields"]["page"]["purposes"] = ["personalization"]
    narrowed["fields"]["message"]["treatment"] = "drop"
    del narrowed["fields"]["email"]
    resp = shop.put("/v1/schemas/page_view", headers=auth(), json=narrowed)
    assert resp.status_code == 200, resp.text
    expected = {"url": "/shop"}
    assert [i["properties"] for i in events(shop, "analytics")] == [expected, expected]
    assert [line["properties"] for line in jsonl(download(shop, "analytics"))] == [
        expected,
        expected,
    ]
    rows = list(csv.DictReader(io.StringIO(download(shop, "analytics", "csv"))))
    assert [json.loads(r["properties"]) for r in rows] == [expected, expected]
    personal = [i["properties"] for i in events(shop, "personalization")]
    assert [p.get("page") for p in personal] == ["/checkout", "/checkout"]
    assert not any({"message", "email"} & set(p) for p in personal)
    body = {"purpose": "analytics", "event_type": "page_view", "group_by": ["page"]}
    resp = shop.post("/v1/query", headers=auth(), json=body)
    assert resp.status_code == 422, resp.text


def test_a_subjects_name_is_keyed_and_differs_per_purpose() -> None:
    names = SubjectNames(b"k" * 32)
    ana = names.of("analytics", "sub_0123456789abcdef0123")
    assert ana == names.of("analytics", "sub_0123456789abcdef0123")
    assert len(ana) == 32
    assert ana != names.of("marketing", "sub_0123456789abcdef0123")
    assert ana != names.of("analytics", "sub_0123456789abcdef0124")
    # Another key, another name: not a hash anyone can recompute from the subject id.
    assert ana != SubjectNames(b"j" * 32).of("analytics", "sub_0123456789abcdef0123")
    # Stable across instances with the same key (reads in other processes agree).
    assert ana == SubjectNames(b"k" * 32).of("analytics", "sub_0123456789abcdef0123")
