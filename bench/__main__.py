"""``python -m bench [NAME ...]``: run every ``bench/bench_*.py`` module (or the named ones).

Each module exposes ``main() -> None`` that prints its table.
"""

from __future__ import annotations

import importlib
import platform
import sys
import warnings
from pathlib import Path


def _modules(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if selected:
        names = [n for n in names if n.removeprefix("bench_") in selected or n in selected]
    return names


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    print(f"# pyramid_attesto benchmarks — python {platform.python_version()}")
    for name in _modules(argv):
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
