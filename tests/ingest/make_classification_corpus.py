"""Writes classification_corpus.jsonl: fictional field samples, each labelled with the
fideslang category a careful person would declare. Run again only to change the corpus:
`python tests/ingest/make_classification_corpus.py` (seeded, so the output is stable)."""

from __future__ import annotations

import json
import random
from pathlib import Path

R = random.Random(20261205)  # noqa: S311 - fictional data, repeatable
FIRST = ["Ana", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lena"]
LAST = ["Lind", "Moss", "Nash", "Orr", "Pike", "Quinn", "Reyes", "Shaw", "Tate", "Voss"]


def email() -> str:
    user = R.choice(FIRST).lower() + R.choice([".", "_", ""]) + R.choice(LAST).lower()
    return (
        f"{user}{R.randrange(100)}@{R.choice(['example.com', 'example.org', 'mail.example.net'])}"
    )


def phone() -> str:
    n = R.randrange(100, 1000)
    return R.choice(
        [f"+44 7700 900{n}", f"07700 900{n}", f"+447700900{n}", f"+1 202-555-0{n % 200 + 100}"]
    )


CARDS = [
    "4111 1111 1111 1111",
    "5555555555554444",
    "378282246310005",
    "4000056655665556",
    "5105-1051-0510-5100",
    "6011111111111117",
    "4242424242424242",
]
IBANS = [
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "GB33BUKB20201555555555",
    "ES9121000418450200051332",
]
SSNS = ["123-45-6789", "078-05-1121", "219-09-9999", "AB 12 34 56 C", "JG103759A", "CE 55 66 77 D"]


def ip() -> str:
    return R.choice(
        [
            f"198.51.100.{R.randrange(1, 255)}",
            f"203.0.113.{R.randrange(1, 255)}",
            f"2001:db8::{R.randrange(1, 9999):x}",
        ]
    )


def uuid() -> str:
    a, b, c, d, e = (R.getrandbits(n) for n in (32, 16, 12, 12, 48))
    return f"{a:08x}-{b:04x}-4{c:03x}-a{d:03x}-{e:012x}"


SENTENCES = [
    "The delivery was late again.",
    "Great service, thank you!",
    "Please cancel my order.",
    "Can someone call me back?",
    "The app crashes on login.",
    "Where is my refund?",
]


def text(pii: bool) -> str:
    s = R.choice(SENTENCES)
    if pii:
        s += R.choice(
            [
                f" Reach me at {email()}.",
                f" My number is {phone()}.",
                f" Card {R.choice(CARDS)} was charged twice.",
            ]
        )
    return s


def url(pii: bool) -> str:
    path = R.choice(["/checkout", "/products/42", "/help", "/account/orders", "/"])
    return f"https://shop.example.com{path}" + (f"?email={email()}" if pii else "")


def dob() -> str:
    return f"{R.randrange(1950, 2005)}-{R.randrange(1, 13):02d}-{R.randrange(1, 29):02d}"


P = "personal"
GROUPS: list[tuple[str, list[str], object]] = [
    (
        "user.contact.email",
        [
            "email",
            "emailAddress",
            "contact_email",
            "user_mail",
            "customer_email",
            "billing_email",
            "login_email",
            "recipient_email",
            "mail",
            "ref",
            "to",
            "reply_to",
            "sender",
        ],
        email,
    ),
    (
        "user.contact.phone_number",
        [
            "phone",
            "mobile",
            "tel",
            "phone_number",
            "contactPhone",
            "msisdn",
            "caller",
            "callback_number",
            "sms_to",
            "whatsapp",
            "home_telephone",
            "cell",
        ],
        phone,
    ),
    (
        "user.financial.credit_card",
        [
            "card_number",
            "pan",
            "cardNumber",
            "cc_number",
            "payment_card_number",
            "card",
            "instrument",
        ],
        lambda: R.choice(CARDS),
    ),
    (
        "user.financial.bank_account",
        ["iban", "bank_account", "account_number", "payout_iban", "refund_account", "destination"],
        lambda: R.choice(IBANS),
    ),
    (
        "user.device.ip_address",
        [
            "ip",
            "ip_address",
            "clientIp",
            "remote_addr",
            "source_ip",
            "x_forwarded_for",
            "origin_host",
        ],
        ip,
    ),
    (
        "user.government_id.national_identification_number",
        ["ssn", "nino", "national_id", "ni_number", "social_security_number", "tax_ref"],
        lambda: R.choice(SSNS),
    ),
    (
        "user.name.first",
        ["first_name", "firstName", "given_name", "forename"],
        lambda: R.choice(FIRST),
    ),
    ("user.name.last", ["last_name", "surname", "lastName", "family_name"], lambda: R.choice(LAST)),
    (
        "user.name",
        ["full_name", "customer_name", "contact_name", "fullName", "agent_name"],
        lambda: f"{R.choice(FIRST)} {R.choice(LAST)}",
    ),
    (
        "user.content",
        [
            "message",
            "comment",
            "chat_text",
            "transcript",
            "feedback",
            "note",
            "body",
            "agent_notes",
            "free_text",
            "review_text",
            "reason",
            "details",
        ],
        lambda: text(R.random() < 0.5),
    ),
    (
        "user.behavior.browsing_history",
        ["url", "page", "page_path", "referrer", "landing_page", "current_url", "next_page"],
        lambda: url(R.random() < 0.2),
    ),
    (
        "user.location.precise",
        ["lat", "lng", "latitude", "longitude", "gps_lat", "geo_lon"],
        lambda: round(R.uniform(-80, 80), 5),
    ),
    (
        "user.demographic.date_of_birth",
        ["dob", "birth_date", "date_of_birth", "birthday", "birthDate"],
        dob,
    ),
    (
        "user.unique_id",
        ["user_id", "customer_id", "member_id", "account_id", "person_id", "loyalty_number"],
        lambda: f"cus_{R.getrandbits(40):x}",
    ),
    ("user.device.device_id", ["device_id", "idfa", "gaid", "deviceId", "hardware_id"], uuid),
    (
        "user.health_and_medical",
        ["diagnosis", "medication", "allergies", "symptoms", "health_condition"],
        lambda: R.choice(["asthma", "none", "penicillin", "migraine", "type 2 diabetes"]),
    ),
    ("user.demographic.gender", ["gender", "sex_at_birth"], lambda: R.choice(["f", "m", "x"])),
    (
        "system.operations",
        [
            "channel",
            "event_source",
            "app_version",
            "status",
            "campaign",
            "utm_source",
            "screen_width",
            "browser",
            "os",
            "currency",
            "experiment_variant",
            "button_id",
            "http_status",
            "latency_ms",
            "retry_count",
            "plan_tier",
            "region_code",
            "build_id",
            "feature_flag",
            "queue",
            "error_code",
            "step",
            "theme",
            "release",
            "build_number",
            "support_line",
            "firmware",
            "api_version",
            "tracking_number",
            "batch_size",
            "cache_hit",
            "color",
            "sort_order",
            "tab",
        ],
        None,
    ),
]


def operations(name: str) -> object:
    table: dict[str, object] = {
        "channel": lambda: R.choice(["web", "app", "call", "chat"]),
        "screen_width": lambda: R.choice([375, 768, 1440]),
        "http_status": lambda: R.choice([200, 404, 500]),
        "latency_ms": lambda: R.randrange(5, 900),
        "retry_count": lambda: R.randrange(0, 4),
        "batch_size": lambda: R.randrange(1, 500),
        "cache_hit": lambda: R.random() < 0.5,
        "sort_order": lambda: R.randrange(1, 9),
        "app_version": lambda: f"{R.randrange(1, 9)}.{R.randrange(0, 20)}.{R.randrange(0, 9)}",
        "firmware": lambda: f"10.{R.randrange(0, 9)}.{R.randrange(0, 9)}.{R.randrange(1, 99)}",
        "support_line": lambda: "0800 123 4567",
        "tracking_number": lambda: f"1Z999AA1{R.randrange(10**9, 10**10)}",
        "build_number": lambda: R.randrange(1000, 99999),
        "error_code": lambda: f"E{R.randrange(1000, 9999)}",
    }
    return table.get(name, lambda: R.choice(["alpha", "beta", "default", "blue", "v2", "eu-west"]))


def main() -> None:
    rows = []
    for category, names, make in GROUPS:
        for name in names:
            gen = make or operations(name)
            values = [gen() for _ in range(R.randrange(3, 9))]  # type: ignore[operator]
            rows.append({"field": name, "values": values, "category": category})
            if make is not None and len(rows) % 2 == 0:
                # The same field seen once more with other values, as a second sample set.
                rows.append(
                    {"field": name, "values": [gen() for _ in range(4)], "category": category}
                )
    out = Path(__file__).with_name("classification_corpus.jsonl")
    out.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    print(len(rows), "rows")


if __name__ == "__main__":
    main()
