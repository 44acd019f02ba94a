"""reads/exports.py through the API, both back-ends: an export records the rows and the policy
version at its creation, its download reads consent again chunk by chunk (so a subject who opts
out after the export was made is not in it), as JSON lines or as CSV whose cells a spreadsheet
will not run; an export is its key's own (and the DPO's)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi.testclient import TestClient

from consentry.runtime import Runtime
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key
from tests.ingest.test_pipeline import event, grant, send, who
from tests.reads.test_query import settings, stored, withdraw

__all__ = ["settings", "stored"]


def test_export_made_before_an_opt_out_omits_the_subject(stored: TestClient) -> None:
    resp = stored.post("/v1/exports", headers=auth(), json={"purpose": "analytics"})
    assert resp.status_code == 200, resp.text
    made = resp.json()
    assert made["status"] == "completed"
    assert made["rows_at_creation"] == 6
    withdraw(stored, "bo", "analytics")
    download = stored.get(f"/v1/exports/{made['export_id']}/download", headers=auth())
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/x-ndjson")
    assert int(download.headers["x-consentry-policy-version"]) > made["policy_version"]
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert len(lines) == 3
    assert not any(line["event_id"].startswith("bo-") for line in lines)


def test_csv_export_and_ownership(stored: TestClient) -> None:
    analyst = make_key(stored, "analyst")
    made = stored.post(
        "/v1/exports",
        headers=auth(analyst),
        json={"purpose": "analytics", "format": "csv", "event_type": "page_view"},
    ).json()
    body = stored.get(f"/v1/exports/{made['export_id']}/download", headers=auth(analyst)).text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 6
    assert json.loads(rows[0]["properties"])["url"].startswith("/p/")
    other = make_key(stored, "analyst")
    resp = stored.get(f"/v1/exports/{made['export_id']}", headers=auth(other))
    assert_problem(resp, 404, "export_not_found")
    # The DPO sees every export.
    dpo = make_key(stored, "dpo")
    assert stored.get(f"/v1/exports/{made['export_id']}", headers=auth(dpo)).status_code == 200


def export(client: TestClient, key: str | None = None, **body: Any) -> dict[str, Any]:
    resp = client.post(
        "/v1/exports", headers=auth(key) if key else auth(), json={"purpose": "analytics"} | body
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_download_reads_every_chunk(stored: TestClient) -> None:
    rt: Runtime = stored.app.state.runtime  # type: ignore[attr-defined]
    rt.exports.chunk = 2
    made = export(stored)
    body = stored.get(f"/v1/exports/{made['export_id']}/download", headers=auth())
    chunks = [json.loads(line)["event_id"] for line in body.text.splitlines()]
    assert sorted(chunks) == ["ana-0", "ana-1", "bo-0", "bo-1", "bo-2", "cy-0"]


def test_csv_cells_a_spreadsheet_would_run_are_quoted_as_text(stored: TestClient) -> None:
    grant(stored, who("dan"), "analytics")
    risky = ["=1+2", "+1", "-1", "@SUM(A1)"]
    results = send(
        stored,
        [event(value, who("dan"), properties={"url": "/x"}) for value in risky],
    )
    assert all(r["status"] == "accepted" for r in results), results
    made = export(stored, format="csv")
    body = stored.get(f"/v1/exports/{made['export_id']}/download", headers=auth()).text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0]) == [
        "event_id",
        "event_type",
        "occurred_at",
        "subject_pseudonym",
        "purpose",
        "properties",
    ]
    ids = {row["event_id"] for row in rows}
    assert {"'" + value for value in risky} <= ids
    assert not ids & set(risky)


def test_an_export_records_its_creation_and_each_download(stored: TestClient) -> None:
    made = export(stored)
    for _ in range(2):
        stored.get(f"/v1/exports/{made['export_id']}/download", headers=auth())
    entries = stored.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()
    mine = [e for e in entries["items"] if e["details"].get("export_id") == made["export_id"]]
    assert [e["action"] for e in mine] == [
        "data:export",
        "data:export:downloaded",
        "data:export:downloaded",
    ]
    assert mine[0]["details"]["policy_version"] == made["policy_version"]


def test_an_unknown_export_is_not_found(stored: TestClient) -> None:
    for path in ("/v1/exports/exp_000000000000000000000000", "/v1/exports/nope/download"):
        assert_problem(stored.get(path, headers=auth()), 404, "export_not_found")
