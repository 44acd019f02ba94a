"""atheris on the body decoders of the raw routes (http/bodies.py, the JSON rules of
jsonlimits.py), bounded in time (tests/libfuzz.py): any bytes decode, or are refused with the
errors a pydantic route gives (a ConsentryError or RequestValidationError); and a body the
JSON rules refuse is never decoded."""

from __future__ import annotations

from pathlib import Path

from fastapi.exceptions import RequestValidationError

from consentry import jsonlimits
from consentry.consent.handlers import CheckBody
from consentry.errors import ConsentryError
from consentry.http.bodies import BodyDecoder
from consentry.subjects.handlers import SubjectRefBody
from tests import libfuzz

DECODERS = (BodyDecoder(CheckBody), BodyDecoder(SubjectRefBody))


def one_input(data: bytes) -> None:
    problem = jsonlimits.problem_of(data)
    for decoder in DECODERS:
        try:
            decoder.decode(data)
        except (ConsentryError, RequestValidationError):
            continue
        if problem is not None:
            raise AssertionError(f"decoded a body the JSON rules refuse ({problem.code})")


def test_the_body_decoders_refuse_with_a_problem_or_decode(tmp_path: Path) -> None:
    seeds = [
        b'{"subject": {"identities": [{"type": "email", "value": "ana@example.com"}]}, '
        b'"purpose": "analytics"}',
        b'{"subject": {"subject_id": "sub_0123456789abcdef0123456789abcdef"}, "purpose": "x"}',
        b'{"subject_id": null, "identities": [{"type": "phone", "value": "+44 7700 900123"}]}',
        b'{"identities": [{"type": "cookie_id", "value": "ck-1\\u0000"}], "x": [1e400, -0.0]}',
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ]
    done = libfuzz.run(
        f"{__name__}:one_input",
        ["consentry.http.bodies", "consentry.jsonlimits", "consentry.http.schemas"],
        tmp_path,
        seeds,
    )
    assert done.returncode == 0, libfuzz.report(done)
