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


SERVICE_PACKAGES = ("api", "ledger", "projections", "workers", "webhooks", "deploy")
SERVICE_FILES = sorted(
    p
    for package in (*SERVICE_PACKAGES, "settings")
    for p in (ROOT / package).rglob("*.py")
)


@pytest.mark.parametrize("path", SERVICE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_service_never_imports_its_tools_or_tests(path: Path) -> None:
    """tools/ (the stack, bench, chaos, the webhook receiver) serve the tests and
    the operators' commands; the service runs without them."""
    assert imported_roots(path) & {"tools", "tests"} == set()


def test_nothing_outside_tests_imports_tests() -> None:
    outside = [
        p
        for p in ROOT.rglob("*.py")
        if not p.relative_to(ROOT).parts[0].startswith(".")
        and p.relative_to(ROOT).parts[0] != "tests"
    ]
    offenders = [
        str(p.relative_to(ROOT)) for p in outside if "tests" in imported_roots(p)
    ]
    assert outside
    assert offenders == []


def test_the_top_level_is_the_service_its_tests_and_its_tools() -> None:
    packages = {
        p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert packages == {*SERVICE_PACKAGES, "settings", "tests", "tools"}
