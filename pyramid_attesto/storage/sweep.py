"""Expired-row sweeping: keeps the attesto tables bounded (``attesto sweep`` calls it).

Each batch deletes at most ``batch_size`` rows in its own short transaction, so a sweep never
holds locks for long and can run on every node at once (on PostgreSQL, ``FOR UPDATE SKIP
LOCKED`` lets concurrent sweepers share the work). What is swept:

- rows whose ``expires_at`` has passed: replay keys, nonces, pushed / pending requests, denied
  access tokens and refresh tokens;
- authorization codes ``code_retention`` seconds after their expiry (a replay of a code is
  recognised, and its tokens revoked, until then);
- the encrypted refresh successor of rows whose grace window has closed (redacted: the
  column is set to NULL, the row stays for reuse detection);
- cached Client ID Metadata Documents whose cache lifetime has ended;
- dynamically registered clients whose client secret has expired (they can no longer
  authenticate). A client whose secret never expires, and a public client, is never swept:
  only RFC 7592 delete (or the host) removes it.

Refresh-family tombstones are never swept: a revoked family stays revoked.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Delete, Engine, Table, Update, bindparam, delete, select, update

from pyramid_attesto.core.clock import Clock, SystemClock

from .engine import check_dialect
from .memory import DEFAULT_CODE_RETENTION
from .tables import (
    authorization_codes,
    client_id_metadata,
    dpop_nonces,
    pushed_requests,
    refresh_tokens,
    registered_clients,
    replays,
    revoked_access_tokens,
)

__all__ = ["DEFAULT_BATCH_SIZE", "sweep"]

DEFAULT_BATCH_SIZE = 1000

_EXPIRING: tuple[tuple[str, Table], ...] = (
    ("codes", authorization_codes),
    ("refresh_tokens", refresh_tokens),
    ("nonces", dpop_nonces),
    ("replay", replays),
    ("requests", pushed_requests),
    ("revoked_access_tokens", revoked_access_tokens),
    ("client_id_metadata", client_id_metadata),
    # expires_at is NULL for a secret that never expires (and for a public client): NULL < x
    # is never true, so those rows stay.
    ("registered_clients", registered_clients),
)


def _batched_delete(table: Table, postgresql: bool) -> Delete:
    (pk,) = table.primary_key.columns
    victims = (
        select(pk)
        .where(table.c.expires_at < bindparam("cutoff", type_=BigInteger))
        .limit(bindparam("n"))
    )
    if postgresql:
        victims = victims.with_for_update(skip_locked=True)
    return delete(table).where(pk.in_(victims.scalar_subquery()))


def _batched_redact(postgresql: bool) -> Update:
    t = refresh_tokens
    victims = (
        select(t.c.token_hash)
        .where(
            t.c.successor.is_not(None),
            t.c.retry_until < bindparam("cutoff", type_=BigInteger),
        )
        .limit(bindparam("n"))
    )
    if postgresql:
        victims = victims.with_for_update(skip_locked=True)
    return (
        update(t)
        .where(t.c.token_hash.in_(victims.scalar_subquery()))
        .values(successor=None, retry_until=None)
    )


def sweep(
    engine: Engine,
    *,
    clock: Clock | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    code_retention: int = DEFAULT_CODE_RETENTION,
    max_batches: int | None = None,
) -> dict[str, int]:
    """Delete expired rows in batches; return the count per store (and ``"redacted"``).

    ``max_batches`` bounds the batches per table for one call (``None``: until done). One
    "now" is read at the start, so rows expiring during the sweep wait for the next one.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    check_dialect(engine.dialect.name)
    postgresql = engine.dialect.name == "postgresql"
    now = int((clock or SystemClock()).now())
    counts: dict[str, int] = {}
    for name, table in _EXPIRING:
        cutoff = now - code_retention if name == "codes" else now
        statement = _batched_delete(table, postgresql)
        counts[name] = _run(engine, statement, cutoff, batch_size, max_batches)
    counts["redacted"] = _run(engine, _batched_redact(postgresql), now, batch_size, max_batches)
    return counts


def _run(
    engine: Engine,
    statement: Delete | Update,
    cutoff: int,
    batch_size: int,
    max_batches: int | None,
) -> int:
    total = batches = 0
    while max_batches is None or batches < max_batches:
        with engine.begin() as conn:
            result = conn.execute(statement, {"cutoff": cutoff, "n": batch_size})
            done = result.rowcount
        total += done
        batches += 1
        if done < batch_size:
            break
    return total
