"""ledger/ is the pure domain: it imports no framework and none of our other packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "django",
    "rest_framework",
    "celery",
    "kombu",
    "api",
    "projections",
    "workers",
    "settings",
}
# The composition root reads Django settings: the one allowed exception.
ALLOWED = {"ledger/apps.py"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


LEDGER_FILES = sorted(
    p
    for p in (ROOT / "ledger").rglob("*.py")
    if str(p.relative_to(ROOT)) not in ALLOWED
)


@pytest.mark.parametrize("path", LEDGER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_ledger_module_imports_no_framework(path: Path) -> None:
    assert imported_roots(path) & FORBIDDEN == set()


def test_api_never_imports_workers() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "api").rglob("*.py")
        if "workers" in imported_roots(p)
    ]
    assert offenders == []


def test_the_import_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from django.conf import settings\nimport celery\n")
    assert imported_roots(sample) >= {"django", "celery"}
