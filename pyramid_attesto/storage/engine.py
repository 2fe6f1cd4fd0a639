"""Engines, sessions and the transactions the SQL stores run in (DESIGN.md rule 3).

:func:`make_engine` accepts only PostgreSQL and SQLite (the others lack what atomic single
use needs) and sets SQLite up so its races resolve like PostgreSQL's: WAL journal, ``BEGIN
IMMEDIATE`` transactions (a writer holds the database from its first statement, so two
transactions never both read "unused" and then both write) and a busy timeout (a second
writer waits instead of failing).

A SQL store does not open transactions of its own: it runs its statements through a
*source*:

- :class:`SessionSource` joins a request's ORM session, the host's ``request.dbsession``
  registered with zope.sqlalchemy and committed by pyramid_tm, or the one
  :func:`get_tm_session` makes when the host has none. Writes mark the session changed, so
  zope.sqlalchemy commits them (it rolls back sessions it believes clean).
- :class:`ConnectionSource` uses a connection whose transaction the caller manages.
- :class:`EngineSource` runs every operation in its own short transaction (the resource
  server's DPoP replay claim, scripts, the sweeper).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import zope.sqlalchemy
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from pyramid_attesto.core.errors import ConfigurationError

__all__ = [
    "SUPPORTED_DIALECTS",
    "ConnectionSource",
    "EngineSource",
    "SessionSource",
    "SqlSource",
    "check_dialect",
    "get_tm_session",
    "make_engine",
    "make_session_factory",
]

SUPPORTED_DIALECTS = ("postgresql", "sqlite")
MIN_SQLITE = (3, 35, 0)  # RETURNING
DEFAULT_BUSY_TIMEOUT_MS = 30_000


def check_dialect(name: str) -> None:
    """Refuse a database other than PostgreSQL and SQLite (>= 3.35)."""
    if name not in SUPPORTED_DIALECTS:
        raise ConfigurationError(
            f"attesto.sqlalchemy.url: the {name!r} database is not supported "
            "(use postgresql or sqlite)"
        )
    if name == "sqlite" and sqlite3.sqlite_version_info < MIN_SQLITE:
        raise ConfigurationError(
            f"SQLite {sqlite3.sqlite_version} is too old: attesto needs >= 3.35 (RETURNING)"
        )


def make_engine(
    url: str | URL,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    **kwargs: Any,
) -> Engine:
    """Create an engine for the attesto stores from a database URL.

    ``kwargs`` go to :func:`sqlalchemy.create_engine` (pool sizes, ``echo``...). SQLite gets
    the WAL journal, ``synchronous=NORMAL``, ``BEGIN IMMEDIATE`` transactions and
    ``busy_timeout_ms``; a bare ``sqlite://`` URL is read as ``sqlite+pysqlite://`` so that
    zope.sqlalchemy allows ``transaction.savepoint()`` (the begin hook makes savepoints
    work on SQLite).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError, ValueError...
        raise ConfigurationError(f"attesto.sqlalchemy.url: not a database URL ({exc})") from None
    backend = parsed.get_backend_name()
    check_dialect(backend)
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    engine = create_engine(parsed, **kwargs)
    if backend == "sqlite":
        _setup_sqlite(engine, busy_timeout_ms)
    return engine


def _setup_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # sqlite3 must not issue its own (deferred) BEGIN: the "begin" hook below does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory for :func:`get_tm_session`."""
    return sessionmaker(bind=engine)


def get_tm_session(
    session_factory: sessionmaker[Session], transaction_manager: Any, request: Any = None
) -> Session:
    """A session joined to ``transaction_manager`` (``request.tm`` under pyramid_tm).

    The same helper as the Pyramid SQLAlchemy cookiecutter's: the session commits or aborts
    with the request's transaction, never by itself.
    """
    session = session_factory(info={"request": request} if request is not None else {})
    zope.sqlalchemy.register(session, transaction_manager=transaction_manager)
    return session


class SqlSource(Protocol):
    """Where a SQL store runs an operation: ``with source.begin(write) as conn: ...``."""

    def begin(self, write: bool) -> AbstractContextManager[Connection]:
        """A connection in the transaction this operation belongs to."""
        ...


class _SessionOp:
    __slots__ = ("_mark", "_session")

    def __init__(self, session: Session, mark: bool) -> None:
        self._session = session
        self._mark = mark

    def __enter__(self) -> Connection:
        connection = self._session.connection()  # begins, and zope.sqlalchemy joins, here
        if self._mark:
            # Before the statements run: a write caught by a caller must still commit.
            zope.sqlalchemy.mark_changed(self._session)
        return connection

    def __exit__(self, *exc: object) -> None:
        return None


class SessionSource:
    """Run in ``session``'s transaction.

    With ``zope=True`` (the default) the session must be registered with zope.sqlalchemy
    (:func:`get_tm_session`, or the host's own ``request.dbsession``); writes call
    :func:`zope.sqlalchemy.mark_changed`. With ``zope=False`` the host commits the session
    itself.
    """

    __slots__ = ("_read", "_session", "_write")

    def __init__(self, session: Session, *, zope: bool = True) -> None:
        self._session = session
        self._read = _SessionOp(session, False)
        self._write = _SessionOp(session, zope)

    def begin(self, write: bool) -> AbstractContextManager[Connection]:
        return self._write if write else self._read


class ConnectionSource:
    """Run on ``connection``, in whatever transaction its owner has begun."""

    __slots__ = ("_context",)

    def __init__(self, connection: Connection) -> None:
        self._context = nullcontext(connection)

    def begin(self, write: bool) -> AbstractContextManager[Connection]:
        return self._context


class EngineSource:
    """Run every operation in its own transaction on a connection from ``engine``'s pool.

    Never use it inside a request that holds attesto rows in its own transaction: two
    transactions on the same rows deadlock on PostgreSQL and lock SQLite (rule 3).
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(self, write: bool) -> AbstractContextManager[Connection]:
        return self._engine.begin()
