"""SQL storage of the clients the server did not configure: dynamically registered clients
(RFC 7591, RFC 7592) and the shared cache of Client ID Metadata Documents.

- :class:`SqlRegistrationStore` is a :class:`~pyramid_attesto.core.registration.
  RegistrationStore` on ``attesto_registered_clients``: the client's metadata as JSON, the
  :func:`~pyramid_attesto.core.secret.hash_secret` values of its secret and of its
  registration access token (never the secrets, DESIGN.md rule 4), when it was issued and
  when its secret expires. Registered clients survive restarts and every node of a cluster
  sees them (the memory store serves one process).
- :class:`SqlMetadataDocumentCache` is a :class:`~pyramid_attesto.core.cimd.
  MetadataDocumentCache` on ``attesto_client_id_metadata``: fetched documents until their
  cache lifetime ends, shared by the nodes; the sweeper deletes them after that.

Like the other SQL stores they run their statements through an
:class:`~pyramid_attesto.storage.engine.SqlSource` (the request's transaction, or one short
transaction per operation), and their statements are built once. Both PostgreSQL and SQLite
statements are built, and the one of the connection's dialect runs: a store made before the
first request does not need to know the database yet (``attesto.storage = dbsession``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import BigInteger, Connection, Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pyramid_attesto.core.cimd import CachedDocument
from pyramid_attesto.core.clock import Clock, SystemClock
from pyramid_attesto.core.registration import DynamicClient, Registration

from .engine import SqlSource
from .tables import client_id_metadata as documents_t
from .tables import registered_clients as clients_t

__all__ = ["SqlMetadataDocumentCache", "SqlRegistrationStore", "client_from_json", "client_json"]

_MAX_ID: Final = 255
_MAX_URL: Final = 2048
_NUL: Final = "\x00"
_COLUMNS: Final = frozenset({"client_id", "issued_at"})  # kept in columns, not in the JSON


def _upserts(table: Table, key: str) -> dict[str, Any]:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` for each dialect."""
    found: dict[str, Any] = {}
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite)):
        statement = module.insert(table)
        columns = {c.name: statement.excluded[c.name] for c in table.columns if c.name != key}
        found[name] = statement.on_conflict_do_update(index_elements=[key], set_=columns)
    return found


def client_json(client: DynamicClient) -> dict[str, Any]:
    """The client's fields as a JSON object (every field but ``client_id`` and
    ``issued_at``, which have columns of their own)."""
    found: dict[str, Any] = {}
    for item in dataclasses.fields(client):
        if item.name in _COLUMNS:
            continue
        value = getattr(client, item.name)
        if isinstance(value, tuple | list | frozenset):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        found[item.name] = value
    return found


def client_from_json(client_id: str, issued_at: int, data: Mapping[str, Any]) -> DynamicClient:
    """The inverse of :func:`client_json`. Members this version does not know (written by a
    newer one) are ignored; fields missing from the JSON take their defaults."""
    known = _known_fields()
    values = {k: v for k, v in data.items() if k in known}
    return DynamicClient(client_id=client_id, issued_at=issued_at, **values)


@functools.cache
def _known_fields() -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(DynamicClient)) - _COLUMNS


class SqlRegistrationStore:
    """A :class:`~pyramid_attesto.core.registration.RegistrationStore` in a table.

    ``store`` inserts a client or replaces it (the memory store's semantics); ``update``
    replaces one that is there (RFC 7592 §2.2: one ``UPDATE … RETURNING``, nothing when the
    client is gone); ``load`` and ``delete`` find it by ``client_id``. The secret and
    registration-token hashes come back with the
    :class:`~pyramid_attesto.core.registration.Registration`, so the secret is verified by
    :class:`~pyramid_attesto.core.registration.RegisteredClientStore` in constant time, as
    for every other store.

    >>> from pyramid_attesto.storage import EngineSource, make_engine, metadata
    >>> engine = make_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> store = SqlRegistrationStore(EngineSource(engine))
    >>> store.load("unknown") is None
    True
    """

    __slots__ = ("_delete", "_load", "_source", "_update", "_upsert")

    def __init__(self, source: SqlSource) -> None:
        self._source = source
        self._upsert = _upserts(clients_t, "client_id")
        c = clients_t.c
        self._load = select(
            c.client_metadata,
            c.secret_hash,
            c.registration_token_hash,
            c.issued_at,
            c.expires_at,
        ).where(c.client_id == bindparam("i"))
        self._delete = delete(clients_t).where(c.client_id == bindparam("i")).returning(c.client_id)
        self._update = (
            update(clients_t)
            .where(c.client_id == bindparam("i"))
            .values(
                client_metadata=bindparam("m"),
                secret_hash=bindparam("s"),
                registration_token_hash=bindparam("t"),
                issued_at=bindparam("n"),
                expires_at=bindparam("e"),
            )
            .returning(c.client_id)
        )

    def store(self, registration: Registration) -> None:
        client = registration.client
        if len(client.client_id) > _MAX_ID or _NUL in client.client_id:
            raise ValueError("a client_id of at most 255 characters without NUL is expected")
        params = {
            "client_id": client.client_id,
            "client_metadata": client_json(client),
            "secret_hash": registration.secret_hash,
            "registration_token_hash": registration.registration_token_hash,
            "issued_at": client.issued_at,
            "expires_at": registration.secret_expires_at or None,
        }
        with self._source.begin(True) as conn:
            conn.execute(self._statement(conn), params)

    def update(self, registration: Registration) -> bool:
        client_id = registration.client_id
        if len(client_id) > _MAX_ID or _NUL in client_id:
            return False
        params = {
            "i": client_id,
            "m": client_json(registration.client),
            "s": registration.secret_hash,
            "t": registration.registration_token_hash,
            "n": registration.client.issued_at,
            "e": registration.secret_expires_at or None,
        }
        with self._source.begin(True) as conn:
            return conn.execute(self._update, params).first() is not None

    def load(self, client_id: str) -> Registration | None:
        if len(client_id) > _MAX_ID or _NUL in client_id:
            return None
        with self._source.begin(False) as conn:
            row = conn.execute(self._load, {"i": client_id}).first()
        if row is None:
            return None
        data, secret_hash, token_hash, issued_at, expires_at = row
        return Registration(
            client=client_from_json(client_id, issued_at, data),
            registration_token_hash=token_hash,
            secret_hash=secret_hash,
            secret_expires_at=expires_at or 0,
        )

    def delete(self, client_id: str) -> bool:
        if len(client_id) > _MAX_ID or _NUL in client_id:
            return False
        with self._source.begin(True) as conn:
            return conn.execute(self._delete, {"i": client_id}).first() is not None

    def _statement(self, conn: Connection) -> Any:
        return self._upsert[conn.dialect.name]


class SqlMetadataDocumentCache:
    """A :class:`~pyramid_attesto.core.cimd.MetadataDocumentCache` in a table: a row lives
    until its ``expires_at`` (``get`` ignores it after that, the sweeper deletes it)."""

    __slots__ = ("_clock", "_delete", "_get", "_source", "_upsert")

    def __init__(self, source: SqlSource, *, clock: Clock | None = None) -> None:
        self._source = source
        self._clock = clock if clock is not None else SystemClock()
        self._upsert = _upserts(documents_t, "url")
        c = documents_t.c
        self._get = select(c.document, c.expires_at).where(
            c.url == bindparam("u"), c.expires_at > bindparam("now", type_=BigInteger)
        )
        self._delete = delete(documents_t).where(c.url == bindparam("u"))

    def get(self, url: str) -> CachedDocument | None:
        if len(url) > _MAX_URL or _NUL in url:
            return None
        with self._source.begin(False) as conn:
            row = conn.execute(self._get, {"u": url, "now": int(self._clock.now())}).first()
        if row is None or not isinstance(row[0], dict):
            return None
        return CachedDocument(row[0], row[1])

    def put(self, url: str, entry: CachedDocument) -> None:
        if len(url) > _MAX_URL or _NUL in url:
            return  # not cached: the next request fetches again
        params = {"url": url, "document": dict(entry.document), "expires_at": entry.expires_at}
        with self._source.begin(True) as conn:
            conn.execute(self._upsert[conn.dialect.name], params)

    def discard(self, url: str) -> None:
        if len(url) > _MAX_URL or _NUL in url:
            return
        with self._source.begin(True) as conn:
            conn.execute(self._delete, {"u": url})
