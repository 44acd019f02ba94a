"""Legal deadlines of data-subject requests: GDPR Art. 12(3) months, CCPA days (§1798.130)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from enum import StrEnum

from consentry.errors import ExtensionNotAllowed
from consentry.subjects.models import Jurisdiction

US_CA_DAYS = 45
US_CA_ACK_BUSINESS_DAYS = 10
MAX_EXTENSION_MONTHS = 2  # Art. 12(3): "by two further months"
MAX_EXTENSION_DAYS = 45  # §1798.130(a)(2): "an additional 45 days"
_SATURDAY = 5


def add_months(moment: datetime, months: int) -> datetime:
    """The same date `months` later, or that month's last day when it has no such date."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_business_days(moment: datetime, days: int) -> datetime:
    """`days` working days (Monday to Friday) after `moment`."""
    current = moment
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < _SATURDAY:
            days -= 1
    return current


def due_at(jurisdiction: Jurisdiction, received_at: datetime) -> datetime:
    """US-CA: 45 days from receipt; EU, UK and everywhere else: one calendar month."""
    if jurisdiction is Jurisdiction.US_CA:
        return received_at + timedelta(days=US_CA_DAYS)
    return add_months(received_at, 1)


def acknowledge_by(jurisdiction: Jurisdiction, received_at: datetime) -> datetime | None:
    """US-CA: confirm receipt within 10 business days (regs §7021(a)); otherwise none."""
    if jurisdiction is Jurisdiction.US_CA:
        return add_business_days(received_at, US_CA_ACK_BUSINESS_DAYS)
    return None


def extended(
    jurisdiction: Jurisdiction,
    due: datetime,
    now: datetime,
    *,
    months: int | None,
    days: int | None,
    already: bool,
) -> datetime:
    """The new deadline of a once-only extension asked before `due`, within the legal limit;
    ExtensionNotAllowed otherwise (naming why)."""
    if already:
        raise ExtensionNotAllowed("a deadline is extended once only")
    if now >= due:
        raise ExtensionNotAllowed("a deadline is extended before it passes, not after")
    if jurisdiction is Jurisdiction.US_CA:
        if months is not None or days is None or not 1 <= days <= MAX_EXTENSION_DAYS:
            raise ExtensionNotAllowed("a US-CA deadline is extended by days, 1 to 45")
        return due + timedelta(days=days)
    if days is not None or months is None or not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise ExtensionNotAllowed("this deadline is extended by months, 1 or 2 (Art. 12(3))")
    return add_months(due, months)


# The backlog's middle band (API.md, Pages: "on track / due within 5 days / overdue").
DUE_SOON = timedelta(days=5)


class Standing(StrEnum):
    """Where an open request stands against its deadline."""

    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


def standing(due: datetime, now: datetime, *, marked_overdue: bool = False) -> Standing:
    """Past `due` (or marked overdue by the runner): overdue; due within DUE_SOON of `now`:
    due soon; else on track. operations/figures.backlog counts by the same bounds."""
    if marked_overdue or due < now:
        return Standing.OVERDUE
    if due - now <= DUE_SOON:
        return Standing.DUE_SOON
    return Standing.ON_TRACK
