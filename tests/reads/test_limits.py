"""Reads across their own limits, both back-ends: more subjects than a read holds keys for (no
event lost when the keys are let go), and a subject erased in the middle of a download (not in
the rest of it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.runtime import Runtime
from tests.conftest import auth
from tests.ingest.test_pipeline import event, grant, send, who
from tests.reads.conftest import view
from tests.reads.test_query import dsr
from tests.reads.test_view import download, jsonl


def runtime(client: TestClient) -> Runtime:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return rt


@pytest.fixture
def tight(shop: TestClient) -> TestClient:
    """Reads that hold two subjects' keys at most and read two events at a time."""
    rt = runtime(shop)
    rt.reads.keys_held = 2
    rt.reads.scan_chunk = 2
    rt.exports.chunk = 2
    return shop


@pytest.fixture
def many(tight: TestClient) -> TestClient:
    """Events of k0, k1 | k1, k2 | k3, k4, read two at a time: the second chunk passes the two
    keys held, and k1, held until then, must be unwrapped again, not taken for erased. Each
    event a minute after the one before, so that both back-ends read them in this order."""
    names = ["k0", "k1", "k1", "k2", "k3", "k4"]
    for name in set(names):
        grant(tight, who(name), "analytics")
    plan = [
        event(
            f"{name}-{n}",
            who(name),
            occurred_at=f"2026-11-20T10:0{n}:00Z",
            properties={"url": "/shop", "page": "/checkout"},
        )
        for n, name in enumerate(names)
    ]
    assert all(r["status"] == "accepted" for r in send(tight, plan))
    return tight


def test_no_event_is_lost_from_a_download_when_it_lets_its_keys_go(many: TestClient) -> None:
    lines = jsonl(download(many, "analytics"))
    assert sorted(line["event_id"].split("-")[0] for line in lines) == [
        "k0",
        "k1",
        "k1",
        "k2",
        "k3",
        "k4",
    ]
    assert all(line["properties"]["page"] == "/checkout" for line in lines)


def test_no_event_is_lost_from_a_group_when_it_lets_its_keys_go(many: TestClient) -> None:
    body: dict[str, Any] = {"purpose": "analytics", "event_type": "page_view"}
    for metric, value in (("count", 6), ("count_subjects", 5)):
        resp = many.post(
            "/v1/query", headers=auth(), json=body | {"group_by": ["page"], "metric": metric}
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["rows"] == [{"page": "/checkout", "value": value}]


def test_a_subject_erased_during_a_download_is_not_in_the_rest_of_it(tight: TestClient) -> None:
    """Chunks of two: ana, cy | cy, ana. cy is erased once the first chunk is out (its key
    held by the download by then): the second chunk holds ana's event alone."""
    view(tight, "ana", 1)
    view(tight, "cy", 2, page="/cy-private")
    view(tight, "ana", 1)
    made = tight.post("/v1/exports", headers=auth(), json={"purpose": "analytics"})
    assert made.status_code == 200, made.text
    rt = runtime(tight)
    export = rt.exports.get(made.json()["export_id"], key_id="", any_key=True)
    with rt.store.read() as conn:
        scope = rt.reads.scope(conn, "analytics", None, None, None)
    _version, content = rt.exports.download(export, scope, actor="test")
    first = [json.loads(line) for line in next(content).splitlines()]
    assert [line["event_id"].split("-")[0] for line in first] == ["ana", "cy"]
    dsr(tight, "cy", "erasure", "high")
    rest = b"".join(content).decode()
    assert [line["event_id"].split("-")[0] for line in jsonl(rest)] == ["ana"]
    assert "/cy-private" not in rest
