"""The demo's simulated traffic: fictional customers and an endless, reproducible sequence of
what they do (consent choices, page views, orders, contact-centre conversations, opt-outs,
GPC visits, data-subject requests). Pure: the same seed gives the same customers and the same
sequence; times are stamped by whoever sends it."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from consentry.client import identity
from consentry.client.types import SubjectRef

# Fictional people: example.com addresses and Ofcom's drama range +44 7700 900000-900999.
FIRST = (
    "Ana", "Ben", "Chloe", "Dev", "Ewa", "Finn", "Grace", "Hugo", "Ines", "Jon", "Kira",
    "Luca", "Mia", "Noah", "Olga", "Pia", "Raj", "Sara", "Tom", "Uma", "Vik", "Wen", "Yara",
    "Zoe",
)  # fmt: skip
LAST = (
    "Adler", "Brook", "Costa", "Dube", "Evans", "Fischer", "Garcia", "Hughes", "Ivanova",
    "Jensen", "Khan", "Laurent", "Moreau", "Novak", "Okafor", "Patel", "Quinn", "Rossi",
    "Silva", "Tanaka", "Varga", "Weber", "Young", "Zielinski",
)  # fmt: skip
JURISDICTIONS = (("UK", 40), ("EU", 35), ("US-CA", 15), ("US", 10))
PAGES = ("/", "/help", "/offers", "/basket", "/account", "/plans/fibre", "/plans/mobile")
QUEUES = ("billing", "technical", "sales", "cancellations")
TOPICS = (
    "move my broadband to a new address",
    "query a charge on my last bill",
    "upgrade to the fibre plan",
    "report a fault on my line",
    "cancel my mobile contract",
)
OPTIONAL = ("analytics", "personalization", "marketing", "advertising")


@dataclass(frozen=True, slots=True)
class Customer:
    """One fictional customer."""

    number: int
    name: str
    email: str
    phone: str
    jurisdiction: str

    @property
    def ref(self) -> SubjectRef:
        """The subject reference the gateway knows the customer by."""
        return identity("email", self.email)


@dataclass(frozen=True, slots=True)
class Send:
    """One event to send (the sender stamps `occurred_at`)."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent choice (a banner, the IVR, an agent); `gpc`: the browser sent GPC."""

    subject: SubjectRef
    purposes: dict[str, str]
    source: str
    jurisdiction: str
    gpc: bool = False


@dataclass(frozen=True, slots=True)
class Withdraw:
    """An opt-out: some purposes, or all."""

    subject: SubjectRef
    purposes: list[str] | Literal["all"]


@dataclass(frozen=True, slots=True)
class Request:
    """A data-subject request, verified at the level it needs."""

    type: Literal["erasure", "access"]
    subject: SubjectRef
    jurisdiction: str


Action = Send | Consent | Withdraw | Request


def customers(seed: int, count: int) -> list[Customer]:
    """`count` fictional customers, the same for the same seed."""
    rng = random.Random(f"customers:{seed}")  # noqa: S311 - reproducible, not secret
    regions = [j for j, _ in JURISDICTIONS]
    weights = [w for _, w in JURISDICTIONS]
    out = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        out.append(
            Customer(
                number=n,
                name=f"{first} {last}",
                email=f"{first}.{last}.{n}@example.com".lower(),
                phone=f"+44 7700 900{rng.randrange(1000):03d}",
                jurisdiction=rng.choices(regions, weights)[0],
            )
        )
    return out


@dataclass
class Traffic:
    """The sequence of actions of `customers(seed, count)`; event ids are `<run>-<n>`."""

    seed: int
    count: int = 3000
    run: str = "demo"
    people: list[Customer] = field(init=False)

    def __post_init__(self) -> None:
        self.people = customers(self.seed, self.count)

    def actions(self) -> Iterator[Action]:
        """Endless; the same seed, count and run give the same actions in the same order."""
        rng = random.Random(f"traffic:{self.seed}")  # noqa: S311 - reproducible, not secret
        met: list[Customer] = []
        known: set[int] = set()
        erased: set[int] = set()
        serial = itertools.count(1)

        def event_id() -> str:
            return f"{self.run}-{next(serial):08d}"

        while True:
            # Mostly returning customers; a new one arrives a fifth of the time.
            if met and (len(met) == self.count or rng.random() < 0.8):
                who = rng.choice(met)
            else:
                who = self.people[len(met)]
                met.append(who)
            if who.number not in known:
                known.add(who.number)
                choice = first_choice(rng, who)
                if choice is not None:
                    yield choice
            yield next_move(rng, who, erased, event_id)


def next_move(
    rng: random.Random, who: Customer, erased: set[int], event_id: Callable[[], str]
) -> Action:
    """What happens next around `who`: mostly an event of theirs (or an anonymous visit),
    sometimes an opt-out or a request; each customer asks for erasure at most once."""
    roll = rng.random()
    if roll < 0.004 and who.number not in erased:
        erased.add(who.number)
        return Request("erasure", who.ref, who.jurisdiction)
    if roll < 0.006:
        return Request("access", who.ref, who.jurisdiction)
    if roll < 0.02:
        purposes: list[str] | Literal["all"] = (
            "all" if rng.random() < 0.4 else [rng.choice(OPTIONAL)]
        )
        return Withdraw(who.ref, purposes)
    make = next(make for upto, make in EVENTS if roll < upto)
    return Send(make(rng, event_id(), who))


def first_choice(rng: random.Random, who: Customer) -> Consent | None:
    """What a customer answers the first time they are asked (None: they never answer)."""
    roll = rng.random()
    source = rng.choice(("web", "app", "ivr", "agent"))
    if roll < 0.15:
        return None
    if roll < 0.25:
        # A browser with Global Privacy Control: advertising (sale/share) is refused for them.
        granted = {"analytics": "granted", "personalization": "granted"}
        return Consent(who.ref, granted, "web", who.jurisdiction, gpc=True)
    if roll < 0.45:
        return Consent(who.ref, dict.fromkeys(OPTIONAL, "denied"), source, who.jurisdiction)
    purposes = {
        "analytics": "granted",
        "personalization": "granted" if rng.random() < 0.8 else "denied",
        "marketing": "granted" if rng.random() < 0.5 else "denied",
        "advertising": "granted" if rng.random() < 0.3 else "denied",
    }
    return Consent(who.ref, purposes, source, who.jurisdiction)


def page_view(rng: random.Random, event_id: str, who: Customer) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "page_view",
        "subject": who.ref,
        "properties": {
            "url": f"https://shop.example.com{rng.choice(PAGES)}",
            "referrer": rng.choice(("search", "email", "direct", "social")),
            "email": who.email,
        },
    }


def anonymous_visit(rng: random.Random, event_id: str, _who: Customer) -> dict[str, Any]:
    """A visitor known only by a cookie, who has not answered the banner (not `_who`)."""
    return {
        "event_id": event_id,
        "event_type": "page_view",
        "subject": identity("cookie_id", f"ck-{rng.randrange(10**8)}"),
        "properties": {"url": f"https://shop.example.com{rng.choice(PAGES)}"},
    }


def outdated_app_event(rng: random.Random, event_id: str, who: Customer) -> dict[str, Any]:
    """An old app build sending a field no schema declares (refused: unknown_field)."""
    event = page_view(rng, event_id, who)
    event["properties"]["device_fingerprint"] = f"fp-{rng.randrange(10**6):06d}"
    return event


def conversation(rng: random.Random, event_id: str, who: Customer) -> dict[str, Any]:
    """A contact-centre call or chat, its transcript carrying the customer's details."""
    first = who.name.split()[0]
    lines = [
        f"Agent: Thanks for calling, who am I speaking to? Customer: It's {who.name}.",
        f"Customer: I want to {rng.choice(TOPICS)}.",
        f"Agent: Can I take a contact number? Customer: Yes, {who.phone}.",
    ]
    if rng.random() < 0.5:
        lines.append(f"Customer: Send the confirmation to {who.email} please.")
    if rng.random() < 0.2:
        lines.append("Customer: I'll pay now, the card is 4111 1111 1111 1111.")
    lines.append(f"Agent: All done, {first}. Anything else?")
    return {
        "event_id": event_id,
        "event_type": "conversation",
        "subject": who.ref,
        "properties": {
            "channel": rng.choice(("voice", "chat")),
            "queue": rng.choice(QUEUES),
            "duration_seconds": rng.randrange(30, 1200),
            "transcript": " ".join(lines),
            "phone": who.phone,
            "sentiment": round(rng.uniform(-1, 1), 2),
        },
    }


def order(rng: random.Random, event_id: str, who: Customer) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "order",
        "subject": who.ref,
        "properties": {
            "order_id": f"ord-{rng.randrange(10**7):07d}",
            "amount": round(rng.uniform(5, 400), 2),
            "currency": "GBP",
            "card": "4111 1111 1111 1111",
            "email": who.email,
        },
    }


# The events of the rolls above 0.02 in `next_move`, by the roll's upper bound.
EVENTS: tuple[tuple[float, Callable[[random.Random, str, Customer], dict[str, Any]]], ...] = (
    (0.12, anonymous_visit),
    (0.14, outdated_app_event),
    (0.55, page_view),
    (0.82, conversation),
    (1.0, order),
)
