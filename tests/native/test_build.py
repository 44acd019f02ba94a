"""consentry.native: without a built core, Consentry does not start on a slower Python copy;
the import fails and says how to build it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# consentry._core made unimportable, as on a checkout where maturin never ran.
_WITHOUT_CORE = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name == "consentry._core":
            raise ImportError("No module named 'consentry._core'")
        return None
sys.meta_path.insert(0, Missing())
import consentry.keys.envelope
"""


def test_a_missing_core_is_an_import_error_naming_how_to_build_it() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CORE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert ran.returncode == 1
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: consentry._core, Consentry's native core, is not built")
    assert "make install" in last
    assert "Rust toolchain" in last


def test_the_core_is_built_beside_the_package() -> None:
    from consentry import _core  # noqa: PLC0415 - the module under test

    assert Path(_core.__file__ or "").parent == ROOT / "src" / "consentry"
