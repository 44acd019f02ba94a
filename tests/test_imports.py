"""DESIGN.md's import rules (pyproject's [tool.importlinter]): kept today, broken by a violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package and its contracts, to plant violations in."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copy(ROOT / "pyproject.toml", root)
    shutil.copytree(
        ROOT / "src" / "consentry",
        root / "src" / "consentry",
        ignore=shutil.ignore_patterns("__pycache__", "*.so"),
    )
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        # Wide enough that no contract's name wraps in the summary.
        env={**os.environ, "PYTHONPATH": str(root / "src"), "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_code_keeps_every_contract(pristine: Path) -> None:
    result = _lint(pristine)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        # storage imports no domain
        ("storage/engine.py", "import consentry.dsr.requests", "storage imports no domain"),
        # a domain does not reach up into the entry points
        ("reads/query.py", "import consentry.runtime", "Imports flow one way"),
        ("consent/ledger.py", "import consentry.http.auth", "only a domain's handlers.py"),
        ("consent/ledger.py", "import consentry.http.auth", "Imports flow one way"),
        ("dsr/erasure.py", "import fastapi", "only a domain's handlers.py"),
        ("ingest/pipeline.py", "from starlette import status", "only a domain's handlers.py"),
        ("storage/consent.py", "import fastapi", "only a domain's handlers.py"),
        ("errors.py", "import consentry.http.errors", "only a domain's handlers.py"),
        ("consent/policy.py", "import sqlalchemy", "policy.py does no I/O"),
        ("consent/policy.py", "from consentry.storage import engine", "policy.py does no I/O"),
        # not even through a module that does the I/O for it
        ("consent/policy.py", "import consentry.configuration", "policy.py does no I/O"),
        # the client talks HTTP only
        ("client/sync.py", "import consentry.errors", "client talks HTTP only"),
        ("client/batches.py", "from consentry.ingest import decode", "client talks HTTP only"),
        ("client/types.py", "import pydantic", "client talks HTTP only"),
    ],
)
def test_a_planted_violation_breaks_its_contract(
    pristine: Path, tmp_path: Path, module: str, planted: str, broken: str
) -> None:
    root = tmp_path / "checkout"
    shutil.copytree(pristine, root)
    path = root / "src" / "consentry" / module
    path.write_text(path.read_text() + f"\n{planted}  # planted\n")
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    # The broken contract is named where the summary lists it.
    summary = result.stdout.split("Broken contracts")[0].splitlines()
    assert any(broken in line and " BROKEN" in line for line in summary), result.stdout
