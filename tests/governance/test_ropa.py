"""GET /v1/ropa (both back-ends): one activity per purpose from purposes, schemas and the
data map; JSON, or CSV by Accept or ?format=csv; auditors may read it, collectors may not."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.governance.test_datamap import CRM, put
from tests.http.test_conventions import assert_problem, make_key
from tests.ingest.test_pipeline import SCHEMA


def test_ropa_json_and_csv(client: TestClient) -> None:
    assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
    put(client, "crm", CRM)
    auditor = make_key(client, "auditor")
    body = client.get("/v1/ropa", headers=auth(auditor)).json()
    by_purpose = {a["purpose"]: a for a in body["activities"]}
    analytics = by_purpose["analytics"]
    assert analytics["legal_basis"] == "consent"
    assert analytics["retention_days"] > 0
    # `offer` serves personalization only; `debug` is dropped, so neither category counts.
    assert analytics["data_categories"] == [
        "system.operations",
        "user.contact.email",
        "user.content",
        "user.financial",
    ]
    assert analytics["recipients"] == [
        {"system_id": "crm", "region": "US", "transfer_mechanism": "dpf", "vendor": CRM["vendor"]}
    ]
    assert by_purpose["security"]["recipients"] == []
    for resp in (
        client.get("/v1/ropa", headers=auth(auditor) | {"Accept": "text/csv"}),
        client.get("/v1/ropa?format=csv", headers=auth(auditor)),
    ):
        assert resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(resp.text)))
        row = next(r for r in rows if r["purpose"] == "analytics")
        assert row["recipients"] == "crm (US, dpf)"
        assert row["legal_basis"] == "consent"
    assert_problem(client.get("/v1/ropa?format=xml", headers=auth()), 422, "invalid_request")
    assert_problem(
        client.get("/v1/ropa", headers=auth(make_key(client, "collector"))), 403, "forbidden"
    )
