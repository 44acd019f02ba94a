"""What the demo registers before traffic flows: purposes, the notice customers see, the
event schemas and the data map (its systems point at the demo's own receivers)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

PURPOSES: dict[str, dict[str, Any]] = {
    "analytics": {"name": "Analytics", "legal_basis": "consent", "retention_days": 395},
    "personalization": {
        "name": "Personalised offers on the site",
        "legal_basis": "consent",
        "retention_days": 395,
    },
    "marketing": {
        "name": "Marketing e-mails and calls",
        "legal_basis": "consent",
        "retention_days": 730,
        "direct_marketing": True,
    },
    "advertising": {
        "name": "Advertising with partners",
        "legal_basis": "consent",
        "retention_days": 90,
        "sale_or_share": True,
    },
    "service_delivery": {
        "name": "Serving the customer's contract",
        "legal_basis": "contract",
        "retention_days": 2190,
    },
}

NOTICE_ID = "demo"
NOTICE_VERSION = "1"
NOTICE_TEXT = (
    "Example Telecom (a fictional company) uses your data to run your contract, to measure "
    "how the site and our contact centre are used, to personalise offers, to send you "
    "marketing and to show you partners' advertising. You may change your mind at any time."
)
NOTICE_PURPOSES = ["analytics", "personalization", "marketing", "advertising"]


def _field(kind: str, category: str, treatment: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "category": category, "treatment": treatment, **extra}


SCHEMAS: dict[str, dict[str, Any]] = {
    "page_view": {
        "purposes": ["analytics", "personalization", "advertising"],
        "fields": {
            "url": _field("string", "system.operations", "keep", required=True),
            "referrer": _field("string", "system.operations", "keep"),
            "email": _field("string", "user.contact.email", "pseudonymise"),
        },
    },
    "conversation": {
        "purposes": ["service_delivery", "analytics", "personalization"],
        "fields": {
            "channel": _field("string", "system.operations", "keep", required=True),
            "queue": _field("string", "system.operations", "keep"),
            "duration_seconds": _field("integer", "system.operations", "keep"),
            "transcript": _field("string", "user.content", "redact"),
            "phone": _field("string", "user.contact.phone_number", "pseudonymise"),
            "sentiment": _field(
                "number", "user.behavior", "keep", purposes=["analytics", "personalization"]
            ),
        },
    },
    "order": {
        "purposes": ["service_delivery", "analytics", "marketing"],
        "fields": {
            "order_id": _field("string", "system.operations", "keep", required=True),
            "amount": _field("number", "user.financial", "keep"),
            "currency": _field("string", "system.operations", "keep"),
            "card": _field("string", "user.financial", "tokenise"),
            "email": _field("string", "user.contact.email", "pseudonymise"),
        },
    },
}


def vendors(today: date) -> dict[str, dict[str, Any]]:
    """The vendor register: the CRM's processor with a DPA in force (a year old, two years to
    run), CCPA service-provider terms and an EU hosting sub-processor; the ad network with no
    DPA at all."""
    return {
        "example-crm": {
            "name": "Example CRM Inc.",
            "dpa_signed_at": (today - timedelta(days=365)).isoformat(),
            "dpa_expires_at": (today + timedelta(days=730)).isoformat(),
            "ccpa_contract_at": (today - timedelta(days=365)).isoformat(),
            "sub_processors": [
                {
                    "name": "Example Hosting GmbH",
                    "region": "EU",
                    "authorised_at": (today - timedelta(days=365)).isoformat(),
                }
            ],
            "certifications": ["ISO 27001"],
            "risk": "medium",
            "reviewed_at": (today - timedelta(days=30)).isoformat(),
        },
        "example-ads": {
            "name": "Example Ads LLC",
            "risk": "high",
            "reviewed_at": (today - timedelta(days=30)).isoformat(),
        },
    }


def systems(endpoints: dict[str, str], today: date) -> dict[str, dict[str, Any]]:
    """The data map, each system's `endpoint` and `rights_endpoint` on its receiver
    (`endpoints`: system id -> receiver URL). One in the EU; one in the US under the Data
    Privacy Framework (certified for a year from `today`); one in the US with neither a
    transfer mechanism nor a DPA, so every delivery to it is blocked."""
    defined: dict[str, dict[str, Any]] = {
        "eu_warehouse": {
            "name": "Analytics warehouse (Frankfurt)",
            "purposes": ["analytics", "personalization"],
            "data_categories": ["system.operations", "user.contact", "user.content"],
            "region": "EU",
            "transfer_mechanism": "none",
            "dpa_signed": True,
        },
        "us_crm": {
            "name": "CRM (Virginia, DPF)",
            "purposes": ["service_delivery", "marketing", "personalization"],
            "data_categories": ["system.operations", "user.contact", "user.financial"],
            "region": "US",
            "transfer_mechanism": "dpf",
            "dpf_certified_until": (today + timedelta(days=365)).isoformat(),
            "vendor": "example-crm",
            "dpa_signed": True,
            "ccpa_role": "service_provider",
        },
        "us_adtech": {
            "name": "Ad network (no DPA, no transfer mechanism)",
            "purposes": ["advertising", "analytics"],
            "data_categories": ["system.operations", "user.contact"],
            "region": "US",
            "transfer_mechanism": "none",
            "vendor": "example-ads",
            "dpa_signed": False,
            "ccpa_role": "third_party",
        },
    }
    for system_id, url in endpoints.items():
        defined[system_id] |= {
            "kind": "webhook",
            "endpoint": f"{url}/events",
            "rights_endpoint": f"{url}/rights",
        }
    return defined
