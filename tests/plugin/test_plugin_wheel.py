"""The plugin loads through its entry point from an installed wheel, not only from the
checkout: the wheel of this checkout is installed into a fresh virtual environment that sees
the pinned dependencies but no other copy of pyramid_attesto, and pytest run there lists the
attesto fixtures and runs a host's test with them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from plugin_support import HOST
from wheel_support import ROOT, build_wheel, install_wheel, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_wheel(build_wheel(tmp_path_factory), tmp_path_factory)


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
    version = run(
        venv_python, "-m", "pytest", "-VV", "-p", "no:cacheprovider", cwd=tmp_path, env=_env()
    )
    venv = venv_python.parent.parent
    assert "pyramid_attesto-0.1.0" in version, version
    assert str(venv) in version.split("pyramid_attesto-")[1], version  # the wheel's copy
    fixtures = run(
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
    out = run(venv_python, "-m", "pytest", "-q", cwd=tmp_path, env=_env())
    assert "1 passed" in out, out
