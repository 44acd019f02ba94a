"""tests/libfuzz.py, atheris in the suite: an exception a target raises fails the run, with its
traceback and the input that raised it written out; a target that never raises passes."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_a_child_of_a_large_process_is_not_out_of_memory(tmp_path: Path) -> None:
    """Late in a suite a worker holds gigabytes, and its children inherit that peak: the
    fuzzer's limit counts from the parent's peak, so a child does not fail on its start."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "held = bytearray(1200 * 2**20)\n"
        "held[:: 4096] = b'x' * len(held[:: 4096])\n"
        "from tests import libfuzz\n"
        "done = libfuzz.run('tests.test_libfuzz:never_raises', ['tests.test_libfuzz'], "
        f"Path({str(tmp_path)!r}), [b'{{}}'], 1)\n"
        "print(libfuzz.report(done))\n"
        "sys.exit(done.returncode)\n"
    )
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(libfuzz.ROOT), str(libfuzz.ROOT / "src")])
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
