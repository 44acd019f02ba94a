"""Field classification: `POST /v1/schemas/{event_type}/classify` on both back-ends, and the
classifier measured on a labelled corpus of fictional field samples
(classification_corpus.jsonl, made by make_classification_corpus.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consentry.errors import InvalidRequest
from consentry.ingest.classify import NON_PERSONAL, classify
from consentry.ingest.models import FieldType, Treatment
from tests.conftest import auth

CORPUS = Path(__file__).with_name("classification_corpus.jsonl")
SAMPLES = [
    {
        "contact": "ana@example.com",
        "customerPhone": "+44 7700 900123",
        "note": "Call me back on 07700 900456 please",
        "url": "/checkout",
        "channel": "web",
        "amount": 3.5,
    },
    {
        "contact": "bo@example.com",
        "customerPhone": "+44 7700 900124",
        "note": "All fine.",
        "url": "/home",
        "channel": "app",
        "amount": 2,
    },
]


def test_each_field_gets_a_category_a_treatment_and_a_confidence(ready: TestClient) -> None:
    resp = ready.post("/v1/schemas/page_view/classify", headers=auth(), json={"samples": SAMPLES})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["event_type"] == "page_view"
    assert body["samples"] == 2
    fields = body["fields"]
    # Found by its values alone: the name says nothing.
    assert fields["contact"]["category"] == "user.contact.email"
    assert fields["contact"]["treatment"] == "pseudonymise"
    assert fields["contact"]["found"] == {"EMAIL": 2}
    # Name and values agree: more confident than the values alone.
    assert fields["customerPhone"]["category"] == "user.contact.phone_number"
    assert fields["customerPhone"]["confidence"] > fields["contact"]["confidence"]
    assert fields["note"]["category"] == "user.content"
    assert fields["note"]["treatment"] == "redact"
    assert fields["channel"]["category"] == NON_PERSONAL
    assert fields["channel"]["personal"] is False
    assert fields["amount"]["type"] == "number"
    for field in fields.values():
        assert 0 < field["confidence"] < 1
    # The page_view schema's fields show their declaration; its url is declared non-personal.
    assert fields["url"]["declared"] == {"category": "system.operations", "treatment": "keep"}
    assert fields["email"]["declared"]["treatment"] == "pseudonymise"
    assert fields["url"]["misclassified"] is True
    assert "declared" not in fields["contact"]
    # Nothing sent is echoed back or kept.
    assert "ana@example.com" not in resp.text
    assert "900123" not in resp.text


def test_an_event_type_without_a_schema_is_classified_from_its_samples(
    ready: TestClient,
) -> None:
    resp = ready.post(
        "/v1/schemas/newcomer/classify", headers=auth(), json={"samples": SAMPLES[:1]}
    )
    assert resp.status_code == 200
    assert all("declared" not in f for f in resp.json()["fields"].values())


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"samples": []}, "invalid_request"),
        ({"samples": [{"a": {"nested": 1}}]}, "invalid_request"),
        ({"samples": [{"ana@example.com": 1}]}, "invalid_request"),
        ({"samples": [{"ana@example.com": {"x": 1}}]}, "invalid_request"),
        ({"samples": [{"ana@example.com": [1]}]}, "invalid_request"),
        ({"samples": [{"a": 1}] * 1001}, "invalid_request"),
        ({}, "invalid_request"),
    ],
)
def test_bad_samples_are_refused_with_a_problem(
    ready: TestClient, body: dict[str, object], code: str
) -> None:
    resp = ready.post("/v1/schemas/page_view/classify", headers=auth(), json=body)
    assert resp.status_code in (400, 422), resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code
    assert "ana@example.com" not in resp.text


def test_a_sample_key_that_is_not_a_field_name_is_refused_without_repeating_it() -> None:
    with pytest.raises(InvalidRequest) as refused:
        classify([{"url": "/"}, {"bo@example.com": "x"}])
    assert "bo@example.com" not in str(refused.value)
    assert "samples[1]" in str(refused.value)


def test_types_and_treatments_fit_each_other() -> None:
    found = {
        s.name: s
        for s in classify(
            [
                {"phone": 447700900123, "at": "2026-11-01T10:00:00Z", "lat": 51.5, "ok": True},
                {"phone": 447700900124, "at": "2026-11-02T10:00:00+01:00", "lat": 51, "ok": False},
            ]
        )
    }
    assert found["phone"].type is FieldType.INTEGER
    assert found["phone"].treatment is Treatment.PSEUDONYMISE
    assert found["at"].type is FieldType.TIMESTAMP
    assert found["lat"].type is FieldType.NUMBER
    assert found["lat"].treatment is Treatment.KEEP  # a number is kept, sealed as personal
    assert found["ok"].type is FieldType.BOOLEAN


def _measure() -> tuple[dict[str, tuple[float, float, int]], float, int]:
    """Precision and recall per expected category, the share of personal fields suggested
    personal, and the corpus's size."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    hit, claimed, expected = Counter[str](), Counter[str](), Counter[str]()
    personal = personal_found = 0
    for row in rows:
        suggestion = classify([{row["field"]: value} for value in row["values"]])[0]
        expected[row["category"]] += 1
        claimed[suggestion.category] += 1
        hit[row["category"]] += suggestion.category == row["category"]
        if row["category"] != NON_PERSONAL:
            personal += 1
            personal_found += suggestion.personal
    table = {
        c: (hit[c] / claimed[c] if claimed[c] else 0.0, hit[c] / expected[c], expected[c])
        for c in sorted(expected)
    }
    return table, personal_found / personal, len(rows)


def test_the_classifier_on_the_labelled_corpus() -> None:
    table, personal_recall, size = _measure()
    print(f"\n{size} labelled field samples; personal fields found personal: {personal_recall:.3f}")
    for category, (precision, recall, n) in table.items():
        print(f"  {category:52s} precision {precision:.2f}  recall {recall:.2f}  n={n}")
    assert size >= 200
    # Every kind the recognizers know is found by its values, whatever the field's name.
    for category in (
        "user.contact.email",
        "user.contact.phone_number",
        "user.financial.credit_card",
        "user.financial.bank_account",
        "user.device.ip_address",
        "user.government_id.national_identification_number",
        "user.content",
    ):
        precision, recall, _ = table[category]
        assert recall == 1.0, category
        assert precision >= 0.9, category
    assert personal_recall >= 0.95
    macro_recall = sum(r for _, r, _ in table.values()) / len(table)
    assert macro_recall >= 0.9
