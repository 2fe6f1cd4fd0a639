"""DESIGN.md layers: the protocol core imports no framework, no transaction manager and no
database library, so it stays usable (and testable) without a web server."""

from __future__ import annotations

import ast
from pathlib import Path

import pyramid_attesto.core

FORBIDDEN = ("pyramid", "webob", "zope", "transaction", "sqlalchemy", "webtest", "waitress")
CORE = Path(pyramid_attesto.core.__file__).parent


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_framework_or_database() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert modules, "core has no modules?"
    offenders = {
        str(path.relative_to(CORE)): sorted(_imported_roots(path) & set(FORBIDDEN))
        for path in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_purity_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy.orm\nfrom pyramid.config import Configurator\n")
    assert _imported_roots(bad) >= {"sqlalchemy", "pyramid"}
