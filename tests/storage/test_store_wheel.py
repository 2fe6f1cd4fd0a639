"""The migrations work from an installed wheel, not only from a checkout (DESIGN.md D20).

Builds the wheel of this checkout, installs it (without dependencies) into a throwaway
virtual environment that sees the development environment's site-packages only for the
dependencies, and runs the migrations from outside the checkout: through
:func:`pyramid_attesto.storage.migrate.upgrade` and through ``alembic -n attesto`` with
``script_location = pyramid_attesto:migrations``.
"""

from __future__ import annotations

import os
import textwrap
import zipfile
from pathlib import Path

import pytest
from wheel_support import ROOT, build_wheel, install_wheel, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory)


@pytest.fixture(scope="module")
def venv_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_wheel(wheel, tmp_path_factory)


def test_wheel_ships_the_migrations_inside_the_package_d20(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "pyramid_attesto/migrations/env.py" in names
    assert "pyramid_attesto/migrations/script.py.mako" in names
    assert "pyramid_attesto/migrations/versions/0001_initial.py" in names
    assert not [n for n in names if n.startswith("alembic/")]  # never a top-level alembic


def test_wheel_holds_every_package_of_the_checkout(wheel: Path) -> None:
    """The package list is explicit (for the alembic/ mapping): nothing may be forgotten."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT))
        for top in ("pyramid_attesto", "pytest_attesto")
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected <= names


def test_installed_wheel_migrates_without_the_checkout(venv_python: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'installed.sqlite'}"
    script = textwrap.dedent(
        f"""
        import pyramid_attesto, alembic
        from pyramid_attesto.storage import migrate
        path = migrate.migrations_path()
        assert "site-packages" in str(path), path
        assert {str(ROOT)!r} not in alembic.__file__, alembic.__file__  # the library
        migrate.upgrade({url!r})
        print(migrate.current({url!r}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert run(venv_python, "-c", script, cwd=tmp_path, env=env).strip() == "attesto_0002"


def test_installed_wheel_runs_alembic_with_the_attesto_section_d20(
    venv_python: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'section.sqlite'}"
    (tmp_path / "alembic.ini").write_text(
        "[attesto]\n"
        "script_location = pyramid_attesto:migrations\n"
        "path_separator = space\n"
        f"sqlalchemy.url = {url}\n"
    )
    run(venv_python, "-m", "alembic", "-n", "attesto", "upgrade", "head", cwd=tmp_path)
    out = run(venv_python, "-m", "alembic", "-n", "attesto", "current", cwd=tmp_path)
    assert "attesto_0002" in out
