"""Store implementations behind the Protocols of :mod:`pyramid_attesto.core.stores`:
memory (one process) and SQLAlchemy (PostgreSQL for clusters, SQLite embedded).

- :class:`MemoryStorage`: the six stores in memory, for tests and single-process scripts.
- :class:`SqlStorage`: the six stores on SQLAlchemy Core; :meth:`SqlStorage.for_session`
  binds them to a request's transaction.
- :func:`make_engine`, :func:`make_session_factory`, :func:`get_tm_session`: the engine and
  the zope.sqlalchemy session the add-on makes when the host has none.
- :class:`SqlRegistrationStore`, :class:`SqlMetadataDocumentCache`: dynamically registered
  clients and the shared Client ID Metadata Document cache in SQL.
- :func:`sweep`: delete expired rows in bounded batches.
- :mod:`~pyramid_attesto.storage.migrate`: the Alembic lineage (``upgrade``, ``downgrade``,
  ``current``); :func:`include_name` / :func:`include_object` keep the attesto tables out of
  a host's autogenerate.
"""

from __future__ import annotations

from .clients import SqlMetadataDocumentCache, SqlRegistrationStore
from .engine import (
    ConnectionSource,
    EngineSource,
    SessionSource,
    SqlSource,
    get_tm_session,
    make_engine,
    make_session_factory,
)
from .memory import MemoryStorage
from .sql import SqlStorage
from .sweep import sweep
from .tables import include_name, include_object, metadata

__all__ = [
    "ConnectionSource",
    "EngineSource",
    "MemoryStorage",
    "SessionSource",
    "SqlMetadataDocumentCache",
    "SqlRegistrationStore",
    "SqlSource",
    "SqlStorage",
    "get_tm_session",
    "include_name",
    "include_object",
    "make_engine",
    "make_session_factory",
    "metadata",
    "sweep",
]
