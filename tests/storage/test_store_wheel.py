"""The migrations work from an installed wheel, not only from a checkout (DESIGN.md D20).

Builds the wheel of this checkout, installs it (without dependencies) into a throwaway
virtual environment that sees the development environment's site-packages only for the
dependencies, and runs the migrations from outside the checkout: through
:func:`pyramid_attesto.storage.migrate.upgrade` and through ``alembic -n attesto`` with
``script_location = pyramid_attesto:migrations``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "_build", ".*_cache")

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a clean copy: an in-tree build/ directory keeps stale files between builds.
    source = tmp_path_factory.mktemp("source") / "pyramid_attesto"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", out, source, cwd=out,
    )  # fmt: skip
    (built,) = out.glob("pyramid_attesto-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv)
    python = venv / "bin" / "python"
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        wheel, cwd=venv,
    )  # fmt: skip
    # The dependencies come from the development environment: a plain path entry, so its
    # editable pyramid_attesto hook (a .pth file there) is not run.
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                        cwd=venv).strip())  # fmt: skip
    (purelib / "dev-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


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
        assert "site-packages" in alembic.__file__, alembic.__file__
        migrate.upgrade({url!r})
        print(migrate.current({url!r}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert _run(venv_python, "-c", script, cwd=tmp_path, env=env).strip() == "attesto_0002"


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
    _run(venv_python, "-m", "alembic", "-n", "attesto", "upgrade", "head", cwd=tmp_path)
    out = _run(venv_python, "-m", "alembic", "-n", "attesto", "current", cwd=tmp_path)
    assert "attesto_0002" in out
