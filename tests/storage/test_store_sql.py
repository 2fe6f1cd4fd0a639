"""What only the SQL stores promise: supported databases, SQLite's setup, hashes at rest,
batched sweeping, and the encrypted refresh successor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, select

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.core.secret import hash_secret
from pyramid_attesto.core.stores import (
    AuthorizationCode,
    PushedRequest,
    RefreshGrant,
    RefreshToken,
    Rotated,
    RotationRefused,
    RotationRetried,
)
from pyramid_attesto.storage import SqlStorage, make_engine, metadata, sweep
from pyramid_attesto.storage.cipher import SuccessorCipher
from pyramid_attesto.storage.engine import check_dialect
from pyramid_attesto.storage.tables import refresh_tokens

if TYPE_CHECKING:
    from conftest import StoreBackend

NOW = 1_700_000_000


def _dump(engine: Engine) -> str:
    """Every row of every attesto table, as text."""
    rows = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                rows.append(repr(tuple(row)))
                rows.extend(
                    bytes(v).decode("latin-1") for v in row if isinstance(v, (bytes, memoryview))
                )
                rows.extend(json.dumps(v) for v in row if isinstance(v, (dict, list)))
    return "\n".join(rows)


# Databases ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["mysql+pymysql://u@h/db", "oracle://u@h/db", "mssql+pyodbc://u@h/db"],
)
def test_only_postgresql_and_sqlite_are_accepted(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not supported"):
        make_engine(url)


def test_unknown_dialect_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not supported"):
        SqlStorage("mysql")
    with pytest.raises(ConfigurationError, match="not supported"):
        check_dialect("firebird")


def test_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a database URL"):
        make_engine("not a url")


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'setup.sqlite'}", busy_timeout_ms=1234)
    yield engine
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_sqlite_driver_name_allows_zope_savepoints(sqlite_engine: Engine) -> None:
    # zope.sqlalchemy refuses savepoints for the bare "sqlite" driver name.
    assert sqlite_engine.url.drivername == "sqlite+pysqlite"


def test_sqlite_savepoint_rolls_back_only_its_part(sqlite_engine: Engine) -> None:
    metadata.create_all(sqlite_engine)
    with sqlite_engine.connect() as connection, connection.begin():
        stores = SqlStorage(sqlite_engine).for_connection(connection)
        stores.replay.check_and_record("kept", NOW + 60)
        with connection.begin_nested() as savepoint:
            stores.replay.check_and_record("undone", NOW + 60)
            savepoint.rollback()
    stores = SqlStorage(sqlite_engine).for_engine(sqlite_engine)
    assert not stores.replay.check_and_record("kept", NOW + 60)
    assert stores.replay.check_and_record("undone", NOW + 60)


def test_memory_sqlite_works_for_one_connection() -> None:
    engine = make_engine("sqlite://")
    metadata.create_all(engine)
    stores = SqlStorage(engine).for_engine(engine)
    assert stores.replay.check_and_record("k", NOW + 1)
    engine.dispose()


# Secrets at rest (DESIGN.md rule 4) ------------------------------------------------------------


def test_only_hashes_of_codes_tokens_and_references_are_stored_rule4(
    sql_store_backend: StoreBackend,
) -> None:
    stores = sql_store_backend.build()
    code, parent, child, reference = (
        "raw-code-7f3a9c",
        "raw-refresh-0-b81e",
        "raw-refresh-1-c92f",
        "urn:ietf:params:oauth:request_uri:raw-ref-d03a",
    )
    stores.codes.put(code, AuthorizationCode("c", "s", "https://a/cb", ("x",), NOW + 60))
    grant = RefreshGrant("c", "s", ("x",))
    stores.refresh_tokens.put(parent, RefreshToken("fam", 0, grant, NOW, NOW + 60, NOW + 90))
    assert isinstance(
        stores.refresh_tokens.rotate(parent, child, expires_at=NOW + 60, grace=30), Rotated
    )
    stores.requests.put(reference, PushedRequest("c", {"a": "b"}, NOW + 60))
    assert sql_store_backend.engine is not None
    dump = _dump(sql_store_backend.engine)
    for secret in (code, parent, child, reference):
        assert secret not in dump
        assert hash_secret(secret) in dump
    retried = stores.refresh_tokens.rotate(parent, "other", expires_at=NOW + 60, grace=30)
    assert isinstance(retried, RotationRetried)
    assert retried.token == child  # recoverable only through the successor secret


def test_stored_successor_is_bound_to_its_row(sql_store_backend: StoreBackend) -> None:
    """A sealed successor copied onto another parent row does not open there."""
    stores = sql_store_backend.build()
    grant = RefreshGrant("c", "s", ("x",))
    for fam in ("a", "b"):
        stores.refresh_tokens.put(f"{fam}-0", RefreshToken(fam, 0, grant, NOW, NOW + 60, NOW + 90))
        stores.refresh_tokens.rotate(f"{fam}-0", f"{fam}-1", expires_at=NOW + 60, grace=30)
    engine = sql_store_backend.engine
    assert engine is not None
    t = refresh_tokens
    with engine.begin() as connection:
        sealed_a = connection.execute(
            select(t.c.successor).where(t.c.token_hash == hash_secret("a-0"))
        ).scalar()
        connection.execute(
            t.update().where(t.c.token_hash == hash_secret("b-0")).values(successor=sealed_a)
        )
    result = stores.refresh_tokens.rotate("b-0", "x", expires_at=NOW + 60, grace=30)
    assert result == RotationRefused("retry_unavailable")


# Sweeping --------------------------------------------------------------------------------------


def test_sweep_works_in_bounded_batches(sql_store_backend: StoreBackend) -> None:
    stores = sql_store_backend.build()
    for i in range(7):
        stores.replay.check_and_record(f"k{i}", NOW + 10)
    stores.replay.check_and_record("live", NOW + 1000)
    sql_store_backend.clock.advance(11)
    assert sql_store_backend.engine is not None
    first = sweep(
        sql_store_backend.engine, clock=sql_store_backend.clock, batch_size=3, max_batches=1
    )
    assert first["replay"] == 3
    rest = sweep(sql_store_backend.engine, clock=sql_store_backend.clock, batch_size=3)
    assert rest["replay"] == 4
    assert not stores.replay.check_and_record("live", NOW + 1000)


def test_sweep_keeps_codes_for_their_retention_period(sql_store_backend: StoreBackend) -> None:
    stores = sql_store_backend.build()
    stores.codes.put("c", AuthorizationCode("c", "s", "https://a/cb", ("x",), NOW + 60))
    sql_store_backend.clock.advance(61)
    assert sql_store_backend.sweep(code_retention=100)["codes"] == 0
    sql_store_backend.clock.advance(100)
    assert sql_store_backend.sweep(code_retention=100)["codes"] == 1


def test_sweep_redacts_successors_once_the_grace_window_closed(
    sql_store_backend: StoreBackend,
) -> None:
    stores = sql_store_backend.build()
    grant = RefreshGrant("c", "s", ("x",))
    stores.refresh_tokens.put("r0", RefreshToken("fam", 0, grant, NOW, NOW + 600, NOW + 900))
    stores.refresh_tokens.rotate("r0", "r1", expires_at=NOW + 600, grace=30)
    assert sql_store_backend.sweep()["redacted"] == 0
    sql_store_backend.clock.advance(31)
    assert sql_store_backend.sweep()["redacted"] == 1
    assert sql_store_backend.engine is not None
    with sql_store_backend.engine.connect() as connection:
        left = connection.execute(
            select(refresh_tokens.c.successor).where(refresh_tokens.c.successor.is_not(None))
        ).all()
    assert left == []
    assert stores.refresh_tokens.get("r1") is not None


def test_sweep_refuses_a_silly_batch_size(sql_store_backend: StoreBackend) -> None:
    assert sql_store_backend.engine is not None
    with pytest.raises(ValueError, match="batch_size"):
        sweep(sql_store_backend.engine, batch_size=0)


# The successor cipher ------------------------------------------------------------------------


def test_successor_secret_must_be_long_enough_d12() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        SuccessorCipher("too short")


def test_sealed_successor_opens_only_with_its_secret_and_row() -> None:
    cipher = SuccessorCipher(b"k" * 32)
    child_hash = hash_secret("child")
    blob = cipher.seal("child", parent_hash="p", child_hash=child_hash)
    assert b"child" not in blob
    assert cipher.open(blob, parent_hash="p", child_hash=child_hash) == "child"
    assert cipher.open(blob, parent_hash="q", child_hash=child_hash) is None
    assert cipher.open(blob, parent_hash="p", child_hash=hash_secret("other")) is None
    assert SuccessorCipher(b"j" * 32).open(blob, parent_hash="p", child_hash=child_hash) is None
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    assert cipher.open(tampered, parent_hash="p", child_hash=child_hash) is None
    assert cipher.open(b"\x02" + blob[1:], parent_hash="p", child_hash=child_hash) is None
    assert cipher.open(b"", parent_hash="p", child_hash=child_hash) is None


def test_each_seal_uses_a_fresh_nonce() -> None:
    cipher = SuccessorCipher("s" * 40)
    h = hash_secret("c")
    assert cipher.seal("c", parent_hash="p", child_hash=h) != cipher.seal(
        "c", parent_hash="p", child_hash=h
    )
