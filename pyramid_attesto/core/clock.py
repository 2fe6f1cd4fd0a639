"""Injectable time source.

Core never calls :func:`time.time` directly: every component that needs "now" takes a
:class:`Clock`, so tests freeze and advance time instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FrozenClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of the current time in seconds since the epoch (UTC)."""

    def now(self) -> float:
        """Return the current time as seconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()


class FrozenClock:
    """A clock that moves only when told to.

    >>> clock = FrozenClock(1_700_000_000)
    >>> clock.advance(30)
    >>> clock.now()
    1700000030.0
    """

    __slots__ = ("_now",)

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self._now = float(now)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (negative moves it back)."""
        self._now += seconds

    def set(self, now: float) -> None:
        """Set the clock to an absolute time."""
        self._now = float(now)
