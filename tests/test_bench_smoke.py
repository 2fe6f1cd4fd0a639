"""The benchmarks still run: each ``bench/bench_*.py`` module once, with every path called a
few times only (``ATTESTO_BENCH_QUICK=1``). Their numbers are not looked at: speed is measured
by ``make bench``, never asserted in the test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_the_benchmark_runs(name: str) -> None:
    env = {**os.environ, "ATTESTO_BENCH_QUICK": "1", "ATTESTO_BENCH_WRK": "1"}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "bench", name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) > 1, result.stdout
