"""storage/ imports no domain: only itself and the shared modules beside it."""

from __future__ import annotations

import ast
from pathlib import Path

import consentry

SRC = Path(consentry.__file__).parent.parent
STORAGE = SRC / "consentry" / "storage"
# What storage may lean on: itself and the top-level modules that belong to no domain.
ALLOWED = ("consentry.storage", "consentry.errors", "consentry.settings", "consentry.clock")


def imported_modules(source: str, package: str) -> list[str]:
    """Every module `source` (a module of `package`) imports, relative imports resolved;
    `from consentry import x` counts as importing `consentry.x`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{module}" if module else base
            found.append(module)
            found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def domain_imports(source: str, package: str) -> list[str]:
    """The consentry modules imported that are neither storage nor shared modules."""
    return [
        m
        for m in imported_modules(source, package)
        if m.startswith("consentry.") and not any(m == a or m.startswith(a + ".") for a in ALLOWED)
    ]


def test_storage_imports_no_domain() -> None:
    files = sorted(STORAGE.rglob("*.py"))
    assert len(files) > 10
    found = {
        str(path.relative_to(STORAGE)): domain_imports(
            path.read_text(), ".".join(path.parent.relative_to(SRC).parts)
        )
        for path in files
    }
    assert {name: modules for name, modules in found.items() if modules} == {}


def test_the_check_sees_each_spelling_of_a_domain_import() -> None:
    source = (
        "import consentry.audit.merkle\n"
        "from consentry.consent import policy\n"
        "from consentry import subjects, clock\n"
        "from .. import dsr\n"
        "from ..ingest.pipeline import Pipeline\n"
        "from .engine import Store\n"
        "def late() -> None:\n"
        "    from consentry.delivery import outbox\n"
    )
    found = domain_imports(source, "consentry.storage")
    assert set(found) >= {
        "consentry.audit.merkle",
        "consentry.consent",
        "consentry.subjects",
        "consentry.dsr",
        "consentry.ingest.pipeline",
        "consentry.delivery",
    }
    assert not [m for m in found if m.startswith(("consentry.storage", "consentry.clock"))]
