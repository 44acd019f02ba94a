"""Every library the product imports is installed by `make install` (pyproject.toml's
runtime dependencies and what they require), not only by the development extra: `make serve`
on a fresh machine installs nothing else."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "consentry"
# Modules of the `presidio` extra, imported only by the redaction bench's reference
# (consentry.bench.redaction), which says how to install it when they are missing.
OPTIONAL = {"presidio_analyzer", "spacy", "tldextract"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _runtime_closure() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [_name(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        # Requirements of an extra are not installed with the package itself.
        todo.extend(_name(r) for r in requires if "extra ==" not in r)
    return seen


def _imported() -> dict[str, str]:
    """Top-level modules the product imports -> a file importing it."""
    found: dict[str, str] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_import_is_a_runtime_dependency() -> None:
    closure = _runtime_closure()
    owners = metadata.packages_distributions()
    missing = []
    for module, where in sorted(_imported().items()):
        if module in sys.stdlib_module_names or module in {"consentry", "__future__"}:
            continue
        if module in OPTIONAL:
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        if not dists & closure:
            missing.append(f"{module} ({where}; from {sorted(dists) or 'no installed package'})")
    assert not missing, "not installed by `make install`: " + ", ".join(missing)
