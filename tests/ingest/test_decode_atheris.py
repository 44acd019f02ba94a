"""atheris on the events batch decoder of the native core, as ingest/decode.py calls it through
consentry.native, bounded in time (tests/libfuzz.py): any bytes decode or are refused whole with
one of the body refusals (a Rust panic, reaching Python as PanicException, is a crash); a batch
that decodes has as many subject references as events, and each event decodes alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from consentry import native
from consentry.errors import ConsentryError
from consentry.ingest import decode
from tests import libfuzz

ROOT = Path(__file__).resolve().parent.parent.parent
LATEST = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
SCHEMAS = {
    "page_view": native.Properties(
        [
            ("url", "string", True),
            ("count", "integer", False),
            ("amount", "number", False),
            ("ok", "boolean", False),
            ("at", "timestamp", False),
        ]
    )
}


def one_input(data: bytes) -> None:
    try:
        batch = decode.batch(data, LATEST, SCHEMAS)
    except ConsentryError as refused:
        if refused.code not in decode.BODY_REFUSALS:
            raise
        return
    subjects = decode.subjects(data)
    if len(subjects) != len(batch.items):
        raise AssertionError(f"{len(batch.items)} events but {len(subjects)} subject references")
    for raw in batch.events:
        decode.event(raw, LATEST)
        decode.event_id_of(raw)


def test_the_native_batch_decoder_refuses_whole_or_decodes(tmp_path: Path) -> None:
    corpus = ROOT / "core" / "fuzz" / "corpus" / "decode_batch"
    seeds = [path.read_bytes() for path in sorted(corpus.iterdir())]
    seeds.append(b'{"events": [{"event_id": "e-2", "subject": {"subject_id": "s"}}], "gpc": 1}')
    done = libfuzz.run(f"{__name__}:one_input", ["consentry.ingest.decode"], tmp_path, seeds)
    assert done.returncode == 0, libfuzz.report(done)
