"""The rules of a breach (GDPR Art. 33/34, Cal. Civ. Code §1798.82) as pure functions: who is
owed notice by when, the exemptions, lateness and what the record still lacks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from consentry.errors import InvalidIncident
from consentry.governance.models import Exemption, Facts, Nature, Notice, Recipient, Risk, Role

# Art. 33(1): the supervisory authority within 72 hours of becoming aware.
AUTHORITY_HOURS = 72
# §1798.82(a) as amended (SB 446): residents within 30 calendar days of discovery; a sample
# notice to the Attorney General within 15 days of notifying them when above 500 residents.
US_CA_RESIDENT_DAYS = 30
US_CA_AG_DAYS = 15
US_CA_AG_THRESHOLD = 500
# "Without undue delay" / "immediately" has no number in the law: a notice to the controller
# (Art. 33(2)) or the data owner (§1798.82(b)) more than a day after it was due counts as late
# and must say why (docs/decisions.md).
IMMEDIATE_GRACE = timedelta(hours=24)


# Art. 33(3)(a)-(d) contents, in the order the record lists what is missing.
CONTENTS = (
    "facts",
    "data_categories",
    "subjects_estimate",
    "records_estimate",
    "likely_consequences",
    "measures",
    "dpo_contact",
)


def check_times(
    detected_at: datetime,
    aware_at: datetime,
    window: tuple[datetime, datetime] | None,
    now: datetime,
) -> None:
    """invalid_incident when a time lies in the future or they are out of order."""
    named = {"detected_at": detected_at, "aware_at": aware_at}
    if window is not None:
        named |= {"window.from": window[0], "window.to": window[1]}
    for name, moment in named.items():
        if moment > now:
            raise InvalidIncident(f"{name} is in the future", field=name, rule="in_future")
    if aware_at < detected_at:
        raise InvalidIncident(
            "aware_at is before detected_at", field="aware_at", rule="aware_before_detected"
        )
    if window is not None and window[0] > window[1]:
        raise InvalidIncident(
            "window.from is after window.to", field="window", rule="window_reversed"
        )


def data_encrypted(reported: bool | None, *, systems: bool, data_directory: bool) -> bool:
    """As reported; unsaid, true only for a breach of Consentry's own store alone (what it
    stores is sealed), false once a system is named (what it delivered is not sealed by it)
    or nothing says where the data was (docs/decisions.md)."""
    if reported is not None:
        return reported
    return data_directory and not systems


def authority_due(f: Facts) -> datetime | None:
    """Art. 33(1): a controller notifies the authority within 72 h unless the breach is
    unlikely to result in a risk (a processor tells its controller instead)."""
    if f.role is Role.CONTROLLER and f.risk is not Risk.NONE:
        return f.aware_at + timedelta(hours=AUTHORITY_HOURS)
    return None


def controller_due(f: Facts) -> datetime | None:
    """Art. 33(2): a processor tells its controller without undue delay, whatever the risk."""
    return f.aware_at if f.role is Role.PROCESSOR else None


def us_ca_applies(f: Facts) -> bool:
    """§1798.82: residents' data acquired unencrypted or with its key (reported so, or a
    confidentiality breach of unencrypted data or with the key compromised)."""
    if not f.us_ca_count:
        return False
    derived = f.nature is Nature.CONFIDENTIALITY and (not f.data_encrypted or f.keys_compromised)
    return f.us_ca_acquired or derived


def data_owner_due(f: Facts) -> datetime | None:
    """§1798.82(b): a business that maintains data it does not own tells the owner
    immediately following discovery (the owner notifies the residents)."""
    if f.role is Role.PROCESSOR and us_ca_applies(f):
        return f.detected_at
    return None


def us_ca_residents_due(f: Facts) -> datetime | None:
    if f.role is Role.CONTROLLER and us_ca_applies(f):
        return f.detected_at + timedelta(days=US_CA_RESIDENT_DAYS)
    return None


def us_ca_ag_due(f: Facts, notices: Sequence[Notice]) -> datetime | None:
    """15 days after the residents' notice: after it was given, or after it is due when it
    has not been given yet (the earlier of the two)."""
    residents_due = us_ca_residents_due(f)
    if residents_due is None or (f.us_ca_count or 0) <= US_CA_AG_THRESHOLD:
        return None
    given = [n.at for n in notices if n.recipient is Recipient.SUBJECTS]
    return min([residents_due, *given]) + timedelta(days=US_CA_AG_DAYS)


def exemption(f: Facts, notices: Sequence[Notice]) -> Exemption | None:
    """Which Art. 34(3) condition spares the subjects a notice, if any."""
    if f.nature is Nature.CONFIDENTIALITY and f.data_encrypted and not f.keys_compromised:
        return Exemption.ENCRYPTED
    if f.high_risk_no_longer_likely and f.measures_given:
        return Exemption.MEASURES
    if f.disproportionate_effort and any(n.recipient is Recipient.PUBLIC for n in notices):
        return Exemption.PUBLIC_NOTICE
    return None


def subjects_notice_required(f: Facts, notices: Sequence[Notice]) -> bool:
    """Art. 34(1) for a high risk unless exempt; §1798.82 whenever it applies to a controller."""
    gdpr = f.role is Role.CONTROLLER and f.risk is Risk.HIGH and exemption(f, notices) is None
    return gdpr or us_ca_residents_due(f) is not None


def due_for(recipient: Recipient, f: Facts, notices: Sequence[Notice]) -> datetime | None:
    """The deadline a notice to `recipient` is measured against (None: it has none)."""
    if recipient is Recipient.AUTHORITY:
        return authority_due(f)
    if recipient is Recipient.CONTROLLER:
        return controller_due(f)
    if recipient is Recipient.DATA_OWNER:
        return data_owner_due(f)
    if recipient is Recipient.SUBJECTS:
        return us_ca_residents_due(f)
    if recipient is Recipient.CA_ATTORNEY_GENERAL:
        return us_ca_ag_due(f, notices)
    return None


def is_late(recipient: Recipient, at: datetime, due: datetime | None) -> bool:
    if due is None:
        return False
    if recipient in (Recipient.CONTROLLER, Recipient.DATA_OWNER):
        return at > due + IMMEDIATE_GRACE
    return at > due


def owed(f: Facts, notices: Sequence[Notice]) -> list[Recipient]:
    """Notices the incident calls for that have not been given."""
    given = {n.recipient for n in notices}
    wanted: list[Recipient] = []
    if authority_due(f) is not None:
        wanted.append(Recipient.AUTHORITY)
    if controller_due(f) is not None:
        wanted.append(Recipient.CONTROLLER)
    if data_owner_due(f) is not None:
        wanted.append(Recipient.DATA_OWNER)
    if subjects_notice_required(f, notices):
        # Art. 34(3)(c): a public communication instead, when notifying each is too much.
        public = f.disproportionate_effort and us_ca_residents_due(f) is None
        wanted.append(Recipient.PUBLIC if public else Recipient.SUBJECTS)
    if us_ca_ag_due(f, notices) is not None:
        wanted.append(Recipient.CA_ATTORNEY_GENERAL)
    return [r for r in wanted if r not in given]


def to_complete(present: dict[str, bool]) -> list[str]:
    """The Art. 33(3) contents the record lacks, in CONTENTS order."""
    return [name for name in CONTENTS if not present.get(name, False)]


def facts_of(
    detected_at: datetime, aware_at: datetime, record: dict[str, Any], measures_given: bool
) -> Facts:
    """The Facts of a stored incident record (its JSON part) and whether it has measures."""
    us_ca = record["us_ca_residents"]
    return Facts(
        detected_at=detected_at,
        aware_at=aware_at,
        nature=Nature(record["nature"]),
        risk=Risk(record["risk"]),
        role=Role(record["controller_role"]),
        data_encrypted=record["data_encrypted"],
        keys_compromised=record["keys_compromised"],
        measures_given=measures_given,
        high_risk_no_longer_likely=record["high_risk_no_longer_likely"],
        disproportionate_effort=record["disproportionate_effort"],
        us_ca_count=None if us_ca is None else us_ca["count"],
        us_ca_acquired=False if us_ca is None else us_ca["acquired_unencrypted_or_with_key"],
    )
