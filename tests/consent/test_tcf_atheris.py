"""atheris on the TCF decoder (consent/tcf.py), bounded in time (tests/libfuzz.py): any text
either decodes or raises TCFDecodeError, and what decodes encodes to a string that decodes to
the same meaning."""

from __future__ import annotations

from pathlib import Path

from consentry.consent.tcf import TCFDecodeError, decode, encode
from tests import libfuzz
from tests.consent.test_tcf import VECTORS


def one_input(data: bytes) -> None:
    text = data.decode("latin-1")
    try:
        tc = decode(text)
    except TCFDecodeError:
        return
    again = encode(tc)
    if decode(again) != tc:
        raise AssertionError(f"{text!r} decodes, encodes to {again!r}, which decodes otherwise")


def test_the_tcf_decoder_refuses_or_round_trips_whatever_it_is_given(tmp_path: Path) -> None:
    seeds = [v["tcString"].encode() for v in VECTORS[:40]]
    done = libfuzz.run(
        f"{__name__}:one_input",
        ["consentry.consent.tcf", "consentry.consent.tcf_segments"],
        tmp_path,
        seeds,
    )
    assert done.returncode == 0, libfuzz.report(done)
