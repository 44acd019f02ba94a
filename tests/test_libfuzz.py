"""tests/libfuzz.py, atheris in the suite: an exception a target raises fails the run, with its
traceback and the input that raised it written out; a target that never raises passes."""

from __future__ import annotations

from pathlib import Path

from tests import libfuzz


def crashes_on_a_brace(data: bytes) -> None:
    if data.startswith(b"{"):
        raise ValueError("a brace")


def never_raises(data: bytes) -> None:
    data.startswith(b"{")


def test_an_exception_is_a_crash_with_its_input(tmp_path: Path) -> None:
    done = libfuzz.run(f"{__name__}:crashes_on_a_brace", [__name__], tmp_path, [b"{}"], 2)
    assert done.returncode != 0
    assert "ValueError: a brace" in libfuzz.report(done)
    assert list(tmp_path.glob("crash-*"))


def test_a_target_that_never_raises_passes(tmp_path: Path) -> None:
    done = libfuzz.run(f"{__name__}:never_raises", [__name__], tmp_path, [b"{}"], 1)
    assert done.returncode == 0, libfuzz.report(done)
