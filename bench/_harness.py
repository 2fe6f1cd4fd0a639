"""Timing helpers shared by the benchmark modules.

Times are medians of several rounds of many calls, in microseconds per call. A ratio is only
meaningful against a floor measured in the same process, in the same run.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Row", "measure", "print_rows"]


def measure(fn: Callable[[], object], *, number: int = 2000, rounds: int = 7) -> float:
    """Median microseconds per call of ``fn`` over ``rounds`` rounds of ``number`` calls."""
    for _ in range(min(number, 200)):
        fn()
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - start) / number * 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(samples)


@dataclass(frozen=True)
class Row:
    """One measured path: its cost, the floor it is compared with, and the target ratio."""

    name: str
    micros: float
    floor: float | None = None
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.micros / self.floor if self.floor else None


def print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n## {title}\n")
    print(f"| {'path':<52} | {'µs/op':>9} | {'floor µs':>9} | {'ratio':>6} | {'target':>6} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 8}|")
    for r in rows:
        floor = f"{r.floor:9.1f}" if r.floor else " " * 9
        ratio = f"{r.ratio:6.2f}" if r.ratio else " " * 6
        target = f"{r.target:6.2f}" if r.target else " " * 6
        flag = "" if r.ratio is None or r.target is None or r.ratio <= r.target else "  MISSED"
        print(f"| {r.name:<52} | {r.micros:9.1f} | {floor} | {ratio} | {target} |{flag}")
