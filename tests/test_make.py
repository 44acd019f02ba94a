"""The Makefile: `make serve` installs what serving needs, `make test` adds the dev extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV_TOOLS = (
    "pytest",
    "hypothesis",
    "ruff",
    "mypy",
    "import-linter",
    "presidio-analyzer",
    "playwright",
    "atheris",
    "pip-audit",
)


def _names(requirements: list[str]) -> set[str]:
    return {r.split("==")[0].split("[")[0].strip().lower() for r in requirements}


def test_the_runtime_dependencies_hold_no_development_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _names(project["dependencies"])
    for tool in DEV_TOOLS:
        assert tool not in runtime
    assert {"pytest", "mypy", "ruff", "import-linter"} <= _names(
        project["optional-dependencies"]["dev"]
    )


def test_lint_checks_the_import_rules(checkout: Path) -> None:
    dry = subprocess.run(
        ["make", "-n", "lint"], cwd=checkout, check=True, capture_output=True, text=True
    ).stdout
    assert ".venv/bin/lint-imports" in dry


def test_lint_audits_the_dependencies_with_the_pinned_pip_audit(checkout: Path) -> None:
    dry = subprocess.run(
        ["make", "-n", "lint"], cwd=checkout, check=True, capture_output=True, text=True
    ).stdout
    assert ".venv/bin/python scripts/audit_dependencies.py" in dry
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("pip-audit==") for r in dev["dev"])


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile, pyproject.toml and the npm files beside a venv whose python and consentry
    only log what they are asked to do."""
    for name in ("Makefile", "pyproject.toml", "package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "consentry"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/log"\n')
        script.chmod(0o755)
    return tmp_path


def _make(checkout: Path, target: str) -> list[str]:
    """The commands the fake venv was asked to run by `make target`."""
    log = checkout / "log"
    log.unlink(missing_ok=True)
    subprocess.run(["make", "-s", target], cwd=checkout, check=True, capture_output=True)
    return log.read_text().splitlines() if log.exists() else []


def test_serve_installs_only_the_runtime_and_once(checkout: Path) -> None:
    first = _make(checkout, "serve")
    assert "python -m pip install --quiet -e ." in first
    assert not any("[dev]" in line for line in first)
    assert first[-1] == "consentry serve"
    # A second `make serve` starts at once.
    assert _make(checkout, "serve") == ["consentry serve"]


def test_demo_needs_only_what_serving_needs(checkout: Path) -> None:
    _make(checkout, "serve")
    assert _make(checkout, "demo") == ["consentry demo"]


def test_test_after_serve_adds_the_dev_extra_and_serve_stays_instant(checkout: Path) -> None:
    _make(checkout, "serve")
    added = _make(checkout, "install-dev")
    assert added == ["python -m pip install --quiet -e .[dev]"]
    dry = subprocess.run(
        ["make", "-n", "test", "lint", "bench"],
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "pip install" not in dry
    assert _make(checkout, "serve") == ["consentry serve"]


def test_test_and_lint_on_a_clean_clone_install_everything_once(checkout: Path) -> None:
    for target in ("test", "lint"):
        dry = subprocess.run(
            ["make", "-n", target], cwd=checkout, check=True, capture_output=True, text=True
        ).stdout
        # The project once, with the extra: not `-e .` first and `-e '.[dev]'` over it.
        assert dry.count("pip install --quiet -e") == 1, dry
        assert "pip install --quiet -e '.[dev]'" in dry
        assert "-m venv .venv" in dry
    installed = _make(checkout, "install-dev")
    assert installed == [
        "python -m pip install --quiet --upgrade pip==25.3",
        "python -m pip install --quiet -e .[dev]",
    ]
    # The runtime is installed too: `make serve` now starts at once.
    assert _make(checkout, "serve") == ["consentry serve"]


def test_a_changed_pyproject_installs_again(checkout: Path) -> None:
    _make(checkout, "install-dev")
    with (checkout / "pyproject.toml").open("a") as f:
        f.write("\n# a new pin\n")
    again = _make(checkout, "serve")
    assert "python -m pip install --quiet -e ." in again
    assert len(list((checkout / ".venv").glob(".installed-*"))) == 1
    assert _make(checkout, "install-dev") == ["python -m pip install --quiet -e .[dev]"]


def _dry(checkout: Path, target: str) -> str:
    return subprocess.run(
        ["make", "-n", target], cwd=checkout, check=True, capture_output=True, text=True
    ).stdout


def test_test_installs_the_npm_packages_before_pytest_and_only_when_the_lock_changed(
    checkout: Path,
) -> None:
    npm_ci = "npm ci --no-audit --no-fund"
    dry = _dry(checkout, "test")
    assert npm_ci in dry
    assert dry.index(npm_ci) < dry.index("-m pytest")
    # What `npm ci` leaves (node_modules and the stamp): the next run installs nothing.
    stamp = checkout / "node_modules" / ".installed-npm"
    stamp.parent.mkdir()
    stamp.touch()
    assert npm_ci not in _dry(checkout, "test")
    # A newer package-lock.json installs again.
    later = time.time() + 10
    os.utime(checkout / "package-lock.json", (later, later))
    assert npm_ci in _dry(checkout, "test")


def test_a_changed_core_source_builds_the_core_again_and_only_it(checkout: Path) -> None:
    source = checkout / "core" / "src" / "lib.rs"
    source.parent.mkdir(parents=True)
    source.write_text("")
    _make(checkout, "install-dev")
    # The install built the core: nothing more to do.
    assert _make(checkout, "serve") == ["consentry serve"]
    stamp = checkout / ".venv" / ".built-core"
    earlier = time.time() - 10
    os.utime(stamp, (earlier, earlier))
    assert _make(checkout, "serve") == [
        "python -m pip install --quiet --no-deps -e .",
        "consentry serve",
    ]
    assert _make(checkout, "serve") == ["consentry serve"]


def test_lint_and_test_check_the_core_before_the_python(checkout: Path) -> None:
    lint = _dry(checkout, "lint")
    assert "cargo fmt --all --check" in lint
    assert "cargo clippy --workspace --all-targets" in lint
    assert "-D warnings" in lint
    test = _dry(checkout, "test")
    assert "cargo test --workspace" in test
    assert test.index("cargo test") < test.index("-m pytest")


def test_the_build_backend_is_the_pinned_maturin_of_the_dev_extra() -> None:
    """The native core is built by the maturin the development extra also installs (its
    `maturin develop --skip-install` builds a checkout's core in place)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    backend = project["build-system"]["requires"]
    assert project["build-system"]["build-backend"] == "maturin"
    assert [r for r in project["project"]["optional-dependencies"]["dev"] if "maturin" in r] == [
        r for r in backend if r.startswith("maturin==")
    ]
    assert project["tool"]["maturin"]["module-name"] == "consentry._core"
