"""Timing helpers shared by the benchmark modules.

Times are medians of several rounds of many calls, in microseconds per call. A ratio is only
meaningful against a floor measured in the same process, in the same run.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["QUICK", "Row", "alternating", "measure", "print_rows", "wrk"]

QUICK = os.environ.get("ATTESTO_BENCH_QUICK") == "1"
"""``ATTESTO_BENCH_QUICK=1``: every path runs a few times only (the test suite's smoke run
checks that the benchmarks still work; its numbers mean nothing)."""


def measure(fn: Callable[[], object], *, number: int = 2000, rounds: int = 7) -> float:
    """Median microseconds per call of ``fn`` over ``rounds`` rounds of ``number`` calls."""
    if QUICK:
        number, rounds = min(number, 3), 1
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


def alternating(
    fns: list[Callable[[], object]], *, number: int, rounds: int = 1, warmup: int = 200
) -> list[float]:
    """Median microseconds per call of each of ``fns``, called in turn (A, B, C, A, B, C,
    ...) ``number * rounds`` times each after ``warmup`` calls each.

    Each call is timed alone, so a load change on this shared machine hits a path and its
    floors alike, and the median drops the calls a neighbour's burst slowed down. No call
    runs with caches warmed by a loop of itself: paths and floors are measured as requests
    run in a server, one after another.
    """
    if QUICK:
        number, rounds, warmup = min(number, 3), 1, 1
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    clock = time.perf_counter
    # The collector stays on: requests leave reference cycles (ORM sessions), and thousands
    # of them uncollected slow every later call; the median drops the calls it interrupts.
    for _ in range(number * rounds):
        for fn, into in zip(fns, samples, strict=True):
            start = clock()
            fn()
            into.append(clock() - start)
    return [statistics.median(x) * 1e6 for x in samples]


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


def wrk(
    app: object,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: str = "",
    **server_options: Any,
) -> str:
    """``app`` under waitress (4 threads) on loopback, loaded by ``wrk -t2 -c20 -d5s`` (GET,
    or POST with a form ``body``): "req/s, CPU µs per request" (the serving process's CPU time
    over the requests wrk counted), or "n/a" without wrk."""
    import logging
    import os
    import shutil
    import subprocess
    import tempfile

    from webtest.http import StopableWSGIServer

    binary = shutil.which("wrk")
    if QUICK:
        return "n/a (quick run)"
    if binary is None:
        return "n/a (no wrk)"
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N"
    server: Any = StopableWSGIServer.create(app, threads=4, **server_options)
    server.wait()
    lines = ["wrk.method = " + ('"POST"' if body else '"GET"')]
    if body:
        lines.append(f"wrk.body = {body!r}")
        lines.append('wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"')
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[{name!r}] = {value!r}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        url = server.application_url.rstrip("/") + path
        cpu = time.process_time()
        out = subprocess.run(  # noqa: S603  (wrk from PATH, fixed arguments)
            [binary, "-t2", "-c20", "-d5s", "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        cpu = time.process_time() - cpu
    finally:
        server.shutdown()
        os.unlink(script.name)
    rate = next((line.split()[1] for line in out.splitlines() if "Requests/sec" in line), None)
    total = next((line.split()[0] for line in out.splitlines() if "requests in" in line), None)
    errors = [line.strip() for line in out.splitlines() if "Non-2xx" in line]
    if rate is None or total is None:
        return "failed: " + out[-200:]
    per = cpu / int(total) * 1e6
    note = f" ({errors[0]})" if errors else ""
    return f"{float(rate):8.0f} req/s, {per:6.0f} CPU µs/req{note}"
