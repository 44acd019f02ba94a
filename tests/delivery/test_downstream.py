"""delivery/downstream.py: the transfer safeguard an access report names for each recipient.
(Its port methods are tested through requests: tests/dsr/test_downstream.py.)"""

from __future__ import annotations

from datetime import date

import pytest

from consentry.delivery.downstream import SAFEGUARDS, safeguard
from consentry.governance.models import Mechanism, Region, System, SystemKind


def recipient(
    mechanism: Mechanism, dpf_certified_until: date | None = None, tia_ref: str | None = None
) -> System:
    return System(
        system_id="crm",
        name="CRM",
        kind=SystemKind.WEBHOOK,
        endpoint="https://crm.example.com/hook",
        purposes=frozenset({"analytics"}),
        data_categories=frozenset({"user.contact"}),
        region=Region.US,
        transfer_mechanism=mechanism,
        dpa_signed=True,
        dpf_certified_until=dpf_certified_until,
        tia_ref=tia_ref,
    )


def test_every_mechanism_is_named() -> None:
    assert set(SAFEGUARDS) == set(Mechanism)


@pytest.mark.parametrize("mechanism", list(Mechanism))
def test_the_safeguard_is_the_mechanisms_alone_without_more_to_say(mechanism: Mechanism) -> None:
    assert safeguard(recipient(mechanism)) == SAFEGUARDS[mechanism]


def test_a_certification_and_an_assessment_are_named_with_it() -> None:
    certified = recipient(
        Mechanism.DPF, dpf_certified_until=date(2027, 6, 30), tia_ref="TIA-2026-07"
    )
    assert safeguard(certified) == (
        "the recipient's EU-US Data Privacy Framework certification (Art. 45), certified until"
        " 2027-06-30; transfer impact assessment TIA-2026-07"
    )
    # A certification date says nothing under another mechanism.
    scc = recipient(Mechanism.SCC, dpf_certified_until=date(2027, 6, 30))
    assert safeguard(scc) == SAFEGUARDS[Mechanism.SCC]


def test_no_assessment_is_named_where_nothing_is_transferred() -> None:
    assert safeguard(recipient(Mechanism.NONE, tia_ref="TIA-2026-07")) == SAFEGUARDS[Mechanism.NONE]
