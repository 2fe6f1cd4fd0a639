"""Shared fixtures.

Storage: the PostgreSQL test database (``ATTESTO_TEST_POSTGRESQL_URL``; without it the
PostgreSQL tests skip, but with ``CI=true`` they fail) and :func:`store_backend`, one store
bundle per implementation (memory, SQLite file, PostgreSQL) for the contract suite.

Every test session works in a schema of its own on PostgreSQL (``search_path`` is set on
each connection and the schema is dropped at the end), so test runs in other worktrees on
the same database never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, make_url, text
from sqlalchemy.pool import NullPool

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.stores import Stores
from pyramid_attesto.storage import MemoryStorage, SqlStorage, make_engine, metadata, sweep

POSTGRESQL_ENV = "ATTESTO_TEST_POSTGRESQL_URL"
SUCCESSOR_SECRET = "test-refresh-successor-secret-0123456789"
EPOCH = 1_700_000_000

STORE_KINDS = ("memory", "sqlite", "postgresql")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"PostgreSQL is required when CI=true: {reason}")
    pytest.skip(reason)


def with_schema(url: URL, schema: str) -> URL:
    """``url`` whose connections use ``schema`` as their search_path."""
    return url.update_query_dict({"options": f"-csearch_path={schema}"})


@pytest.fixture(scope="session")
def postgresql_server_url() -> URL:
    """The URL of the PostgreSQL test database, checked to accept connections."""
    raw = os.environ.get(POSTGRESQL_ENV)
    if not raw:
        _unavailable(f"{POSTGRESQL_ENV} is not set")
    url = make_url(str(raw))
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        _unavailable(f"cannot connect to {url.render_as_string()}: {type(exc).__name__}")
    finally:
        engine.dispose()
    return url


class SchemaFactory:
    """Creates throwaway PostgreSQL schemas and drops them all at the end."""

    def __init__(self, server_url: URL) -> None:
        self._admin = make_engine(server_url, poolclass=NullPool)
        self._server_url = server_url
        self._made: list[str] = []

    def __call__(self) -> URL:
        schema = f"attesto_test_{secrets.token_hex(6)}"
        with self._admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        self._made.append(schema)
        return with_schema(self._server_url, schema)

    def drop_all(self) -> None:
        with self._admin.begin() as connection:
            for schema in self._made:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgresql_schemas(postgresql_server_url: URL) -> Iterator[SchemaFactory]:
    """Call it for a URL on a fresh, empty schema of this test session."""
    factory = SchemaFactory(postgresql_server_url)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def postgresql_url(postgresql_schemas: SchemaFactory) -> URL:
    """The URL of this test session's PostgreSQL schema (empty at first)."""
    return postgresql_schemas()


@pytest.fixture(scope="session")
def postgresql_store_engine(postgresql_schemas: SchemaFactory) -> Iterator[Engine]:
    """An engine on a schema holding the attesto tables, shared by the contract tests."""
    engine = make_engine(postgresql_schemas())
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@dataclass
class StoreBackend:
    """One implementation of the stores, with its clock, for a contract test."""

    kind: str
    clock: FrozenClock
    engine: Engine | None
    memory: MemoryStorage | None = None

    def build(self, *, successor_secret: str | None = SUCCESSOR_SECRET) -> Stores:
        """A fresh bundle over the same data (for memory, new empty stores)."""
        if self.engine is None:
            self.memory = MemoryStorage(self.clock, successor_secret=successor_secret)
            return self.memory.stores
        storage = SqlStorage(self.engine, clock=self.clock, successor_secret=successor_secret)
        return storage.for_engine(self.engine)

    def sweep(self, **kwargs: int) -> dict[str, int]:
        if self.engine is None:
            assert self.memory is not None
            return self.memory.sweep()
        return sweep(self.engine, clock=self.clock, **kwargs)


def _truncate(engine: Engine) -> None:
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names}"))


_POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgresql)


@pytest.fixture(params=["memory", "sqlite", _POSTGRESQL])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each store implementation in turn."""
    kind: str = request.param
    return kind


@pytest.fixture(params=["sqlite", _POSTGRESQL])
def sql_store_kind(request: pytest.FixtureRequest) -> str:
    """Each SQL store implementation in turn."""
    kind: str = request.param
    return kind


@pytest.fixture
def sqlite_store_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh SQLite file holding the attesto tables."""
    engine = make_engine(f"sqlite:///{tmp_path / 'attesto.sqlite'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _backend(kind: str, request: pytest.FixtureRequest) -> StoreBackend:
    engine: Engine | None = None
    if kind == "sqlite":
        engine = request.getfixturevalue("sqlite_store_engine")
    elif kind == "postgresql":
        engine = request.getfixturevalue("postgresql_store_engine")
        _truncate(engine)
    return StoreBackend(kind, FrozenClock(EPOCH), engine)


@pytest.fixture
def store_backend(store_kind: str, request: pytest.FixtureRequest) -> StoreBackend:
    """Empty stores of the parametrized kind, on a frozen clock."""
    return _backend(store_kind, request)


@pytest.fixture
def sql_store_backend(sql_store_kind: str, request: pytest.FixtureRequest) -> StoreBackend:
    """Empty SQL stores (SQLite, PostgreSQL), on a frozen clock."""
    return _backend(sql_store_kind, request)


@pytest.fixture
def stores(store_backend: StoreBackend) -> Stores:
    """The stores of :func:`store_backend`, with the refresh successor secret set."""
    return store_backend.build()
