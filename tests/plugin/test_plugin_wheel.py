"""The plugin loads through its entry point from an installed wheel, not only from the
checkout: the wheel of this checkout is installed into a fresh virtual environment that sees
the pinned dependencies but no other copy of pyramid_attesto, and pytest run there lists the
attesto fixtures and runs a host's test with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from plugin_support import HOST

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "_build", ".*_cache")
# What of the development environment the fresh one must not see: its editable install.
_OURS = ("pyramid_attesto", "pytest_attesto", "__editable__", "_pyramid_attesto")

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
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a clean copy: an in-tree build/ directory keeps stale files between builds.
    source = tmp_path_factory.mktemp("source") / "pyramid_attesto"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", out, source, cwd=out,
    )  # fmt: skip
    (wheel,) = out.glob("pyramid_attesto-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv)
    python = venv / "bin" / "python"
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        wheel, cwd=venv,
    )  # fmt: skip
    # The pinned dependencies, from the development environment, through a directory of links
    # to everything there except pyramid_attesto itself (its editable install and metadata).
    deps = tmp_path_factory.mktemp("deps")
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not entry.name.startswith(_OURS) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=venv)
    (Path(purelib.strip()) / "dev-dependencies.pth").write_text(f"{deps}\n")
    return python


def _env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
        and not k.startswith("PYTEST_DISABLE")
    }


def test_the_installed_plugin_lists_its_fixtures_through_the_entry_point(
    venv_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    version = _run(
        venv_python, "-m", "pytest", "-VV", "-p", "no:cacheprovider", cwd=tmp_path, env=_env()
    )
    venv = venv_python.parent.parent
    assert "pyramid_attesto-0.1.0" in version, version
    assert str(venv) in version.split("pyramid_attesto-")[1], version  # the wheel's copy
    fixtures = _run(
        venv_python, "-m", "pytest", "--fixtures", "-v", "-p", "no:cacheprovider",
        cwd=tmp_path, env=_env(),
    )  # fmt: skip
    for name in ("attesto_client", "attesto_token", "attesto_keystore", "dpop_proof"):
        assert f"{name} " in fixtures or f"{name} [" in fixtures, name
    assert str(venv) in fixtures  # the fixtures are defined in the installed package
    assert str(ROOT) not in fixtures


def test_a_host_test_runs_with_the_installed_plugin(venv_python: Path, tmp_path: Path) -> None:
    shutil.copy(HOST / "reports_api.py", tmp_path / "reports_api.py")
    shutil.copy(HOST / "host_conftest.py", tmp_path / "conftest.py")
    shutil.copy(HOST / "host_pytest.ini", tmp_path / "pytest.ini")
    (tmp_path / "test_api.py").write_text(
        "def test_api(attesto_client):\n"
        "    alice = attesto_client.as_subject('alice', scopes=['read:reports'], dpop=True)\n"
        "    assert alice.get('/api/reports').json['token_type'] == 'DPoP'\n"
    )
    out = _run(venv_python, "-m", "pytest", "-q", cwd=tmp_path, env=_env())
    assert "1 passed" in out, out
