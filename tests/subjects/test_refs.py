"""subjects/refs.py: a subject reference from the wire is a subject id or normalised identities."""

from __future__ import annotations

import pytest

from consentry.errors import EmptyIdentities, InvalidIdentity, InvalidSubjectRef
from consentry.subjects.models import Identity, IdentityType, SubjectRef
from consentry.subjects.refs import MAX_IDENTITIES, subject_ref

SUBJECT_ID = "sub_0123456789abcdef01234567"


def test_a_subject_id_is_taken_as_it_is() -> None:
    assert subject_ref(SUBJECT_ID, None) == SubjectRef(subject_id=SUBJECT_ID)


@pytest.mark.parametrize(
    "subject_id",
    [
        "sub_0123456789ABCDEF01234567",  # upper case
        "sub_0123456789abcdef0123456",  # one short
        "sub_0123456789abcdef012345678",  # one long
        "usr_0123456789abcdef01234567",
        " sub_0123456789abcdef01234567",
        "",
    ],
)
def test_anything_else_as_a_subject_id_is_refused(subject_id: str) -> None:
    with pytest.raises(InvalidSubjectRef):
        subject_ref(subject_id, None)


def test_identities_are_normalised_and_their_duplicates_dropped_in_order() -> None:
    ref = subject_ref(
        None,
        [
            ("email", " Ada@Example.com "),
            ("phone", "07700 900123"),
            ("email", "ada@example.com"),
        ],
        default_region="GB",
    )
    assert ref == SubjectRef(
        identities=(
            Identity(IdentityType.EMAIL, "ada@example.com"),
            Identity(IdentityType.PHONE, "+447700900123"),
        )
    )


def test_both_or_neither_is_refused() -> None:
    with pytest.raises(InvalidSubjectRef, match="not both"):
        subject_ref(SUBJECT_ID, [("email", "ada@example.com")])
    with pytest.raises(InvalidSubjectRef, match="needs subject_id or identities"):
        subject_ref(None, None)


def test_an_empty_list_of_identities_is_its_own_code() -> None:
    with pytest.raises(EmptyIdentities) as caught:
        subject_ref(None, [])
    assert caught.value.code == "empty_identities"


def test_at_most_the_limit_of_identities() -> None:
    many = [("customer_id", f"CUST-{n:06d}") for n in range(MAX_IDENTITIES + 1)]
    assert len(subject_ref(None, many[:MAX_IDENTITIES]).identities) == MAX_IDENTITIES
    with pytest.raises(InvalidSubjectRef, match=f"at most {MAX_IDENTITIES}"):
        subject_ref(None, many)


def test_a_bad_identity_is_refused_by_normalisation() -> None:
    with pytest.raises(InvalidIdentity):
        subject_ref(None, [("email", "not an address")])
