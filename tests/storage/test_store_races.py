"""Single use under real concurrency (DESIGN.md rule 2).

32 threads, each with its own database connection and transaction, are released together
by a barrier and race for the same code, request reference, replay key or refresh token.
The database decides the winner: SQLite through ``BEGIN IMMEDIATE`` and its busy timeout,
PostgreSQL through row locks and the family advisory lock. The memory stores run the same
races on threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import URL, Engine, text
from sqlalchemy.pool import NullPool

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.stores import (
    AuthorizationCode,
    CodeRefused,
    CodeTaken,
    PushedRequest,
    RefreshGrant,
    RefreshToken,
    ReuseDetected,
    Rotated,
    RotationRefused,
    RotationRetried,
    Stores,
)
from pyramid_attesto.storage import MemoryStorage, SqlStorage, make_engine, metadata

CONTENDERS = 32
NOW = 1_700_000_000
SECRET = "race-successor-secret-0123456789abcdef"
T = TypeVar("T")


class Racer:
    """Runs one operation on ``CONTENDERS`` threads at once, each in its own transaction."""

    def __init__(self, kind: str, engine: Engine | None) -> None:
        self.kind = kind
        self.clock = FrozenClock(NOW)
        self.engine = engine
        if engine is None:
            self._memory = MemoryStorage(self.clock, successor_secret=SECRET)
        else:
            self._sql = SqlStorage(engine, clock=self.clock, successor_secret=SECRET)

    def setup(self) -> Stores:
        """Stores for preparing and checking, outside the race."""
        if self.engine is None:
            return self._memory.stores
        return self._sql.for_engine(self.engine)

    def run(self, op: Callable[[int, Stores], T], n: int = CONTENDERS) -> list[T | None]:
        barrier = threading.Barrier(n, timeout=60)
        results: list[T | None] = [None] * n
        errors: list[BaseException] = []

        def contender(i: int) -> None:
            try:
                if self.engine is None:
                    barrier.wait()
                    results[i] = op(i, self._memory.stores)
                    return
                with self.engine.connect() as connection:
                    barrier.wait()
                    with connection.begin():
                        results[i] = op(i, self._sql.for_connection(connection))
            except BaseException as exc:  # reported below, with every other thread's
                errors.append(exc)

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a contender hung"
        assert errors == []
        return results


@pytest.fixture(
    params=[
        "memory",
        pytest.param("sqlite", marks=pytest.mark.slow),
        pytest.param("postgresql", marks=[pytest.mark.postgresql, pytest.mark.slow]),
    ]
)
def racer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Racer]:
    kind: str = request.param
    if kind == "memory":
        yield Racer(kind, None)
        return
    if kind == "sqlite":
        url: str | URL = f"sqlite:///{tmp_path / 'race.sqlite'}"
    else:
        url = request.getfixturevalue("postgresql_schemas")()
    engine = make_engine(url, poolclass=NullPool)
    metadata.create_all(engine)
    yield Racer(kind, engine)
    engine.dispose()


def test_one_code_is_taken_once_rfc6749_4_1_2(racer: Racer) -> None:
    """RFC 6749 §4.1.2: of 32 simultaneous redemptions, exactly one gets the code."""
    racer.setup().codes.put(
        "the-code", AuthorizationCode("c", "s", "https://a/cb", ("x",), NOW + 60)
    )
    results = racer.run(lambda i, stores: stores.codes.take("the-code"))
    assert sum(isinstance(r, CodeTaken) for r in results) == 1
    assert [r for r in results if not isinstance(r, CodeTaken)] == [CodeRefused("consumed")] * (
        CONTENDERS - 1
    )


def test_one_request_reference_is_taken_once_rfc9126_4(racer: Racer) -> None:
    """RFC 9126 §4: the request_uri is one-time use, even under concurrent authorizations."""
    racer.setup().requests.put("urn:ref", PushedRequest("c", {"a": 1}, NOW + 90))
    results = racer.run(lambda i, stores: stores.requests.take("urn:ref", "c"))
    assert sum(r is not None for r in results) == 1


def test_one_replay_key_is_recorded_once_rfc9449_11_1(racer: Racer) -> None:
    """RFC 9449 §11.1: a DPoP proof (jti) is accepted once, whichever node sees it first."""
    results = racer.run(lambda i, stores: stores.replay.check_and_record("jkt:jti", NOW + 120))
    assert results.count(True) == 1


def _family(stores: Stores) -> None:
    grant = RefreshGrant("c", "s", ("offline_access",))
    assert stores.refresh_tokens.put(
        "rt-0", RefreshToken("fam", 0, grant, NOW, NOW + 3600, NOW + 7200)
    )


def _live_children(stores: Stores) -> list[str]:
    live = []
    for i in range(CONTENDERS):
        entry = stores.refresh_tokens.get(f"child-{i}")
        if entry is not None and entry.consumed_at is None:
            live.append(f"child-{i}")
    return live


def test_concurrent_rotation_in_grace_window_yields_one_successor_rfc9700_4_14_2(
    racer: Racer,
) -> None:
    """Every racer gets the one successor (inside the grace window) or nothing: never two
    different live successors."""
    setup = racer.setup()
    _family(setup)
    results = racer.run(
        lambda i, stores: stores.refresh_tokens.rotate(
            "rt-0", f"child-{i}", expires_at=NOW + 3600, grace=60
        )
    )
    rotated = [r for r in results if isinstance(r, Rotated)]
    assert len(rotated) == 1
    winner = next(f"child-{i}" for i, r in enumerate(results) if isinstance(r, Rotated))
    retried = [r for r in results if isinstance(r, RotationRetried)]
    assert len(retried) == CONTENDERS - 1
    assert {r.token for r in retried} == {winner}
    assert _live_children(setup) == [winner]


def test_concurrent_strict_rotation_never_leaves_two_live_successors_rfc9700_4_14_2(
    racer: Racer,
) -> None:
    """Without a grace window a concurrent duplicate is reuse: the family dies entirely."""
    setup = racer.setup()
    _family(setup)
    results = racer.run(
        lambda i, stores: stores.refresh_tokens.rotate("rt-0", f"child-{i}", expires_at=NOW + 3600)
    )
    assert sum(isinstance(r, Rotated) for r in results) == 1
    assert all(isinstance(r, (Rotated, ReuseDetected, RotationRefused)) for r in results)
    assert _live_children(setup) == []


def test_family_revoked_while_rotations_race_leaves_no_live_token_rfc9700_4_14_2(
    racer: Racer,
) -> None:
    setup = racer.setup()
    _family(setup)

    def rotate_or_revoke(i: int, stores: Stores) -> object:
        if i == CONTENDERS // 2:
            stores.refresh_tokens.revoke_family("fam")
            return "revoked"
        return stores.refresh_tokens.rotate("rt-0", f"child-{i}", expires_at=NOW + 3600, grace=60)

    results = racer.run(rotate_or_revoke)
    assert results.count("revoked") == 1
    assert _live_children(setup) == []
    assert setup.refresh_tokens.get("rt-0") is None


def test_sqlite_begins_immediate_so_a_second_writer_waits(tmp_path: Path) -> None:
    """The second transaction cannot even start while the first holds the database: no
    two transactions both read "unused" and then both write."""
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.sqlite'}", busy_timeout_ms=50)
    metadata.create_all(engine)
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        first.execute(text("SELECT 1"))
        with pytest.raises(Exception, match="locked"):
            second.begin()
        first.rollback()
    engine.dispose()
