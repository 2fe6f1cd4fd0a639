"""Build this checkout's wheel and install it into a fresh virtual environment that sees the
pinned dependencies of the development environment but no other copy of pyramid_attesto
(shared by the storage and plugin wheel tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "_build", ".*_cache")
# What of the development environment the fresh one must not see: its editable install.
_OURS = ("pyramid_attesto", "pytest_attesto", "__editable__", "_pyramid_attesto")


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout, or a failed assertion showing both streams."""
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


def build_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built from a clean copy (an in-tree build/ directory
    keeps stale files between builds)."""
    source = tmp_path_factory.mktemp("source") / "pyramid_attesto"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", out, source, cwd=out,
    )  # fmt: skip
    (wheel,) = out.glob("pyramid_attesto-*.whl")
    return wheel


def install_wheel(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv with ``wheel`` installed and the development environment's
    dependencies visible through a directory of links that leaves out pyramid_attesto itself
    (its editable install and metadata)."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv)
    python = venv / "bin" / "python"
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        wheel, cwd=venv,
    )  # fmt: skip
    deps = tmp_path_factory.mktemp("deps")
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not entry.name.startswith(_OURS) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=venv)
    (Path(purelib.strip()) / "dev-dependencies.pth").write_text(f"{deps}\n")
    return python
