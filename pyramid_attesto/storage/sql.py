"""SQLAlchemy stores: PostgreSQL for clusters, SQLite embedded (DESIGN.md rule 2, Storage).

Atomicity comes from the database, never from read-then-write in Python:

- codes: ``UPDATE … SET consumed_at WHERE consumed_at IS NULL AND expires_at > now
  RETURNING`` (the row stays, so a replay is recognised);
- PAR: ``DELETE … RETURNING`` at code issuance, a plain ``SELECT`` before;
- replay keys, nonces, denylist, new rows: ``INSERT … ON CONFLICT DO NOTHING RETURNING``
  (psycopg 3 reports ``rowcount`` -1 for it: the returned row tells first use from replay);
- refresh rotation: one transaction, serialized per family by ``pg_advisory_xact_lock`` on
  PostgreSQL (by ``BEGIN IMMEDIATE`` on SQLite), that claims the parent with the same
  ``UPDATE … RETURNING``, inserts the child and stores the encrypted retry state; a
  revoked family is a row in ``attesto_refresh_family_revocations``, read by every liveness
  check, so a revocation racing a rotation still leaves no live token.

Every statement is built once, per dialect, when :class:`SqlStorage` is created. The stores
run them through an :class:`~pyramid_attesto.storage.engine.SqlSource`, so they take part in
the request's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Engine,
    LargeBinary,
    String,
    Table,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pyramid_attesto.core.clock import Clock, SystemClock
from pyramid_attesto.core.secret import generate_secret, hash_secret
from pyramid_attesto.core.stores import (
    AuthorizationCode,
    CodeRefused,
    CodeReused,
    CodeTaken,
    CodeTakeResult,
    IssuedAccessToken,
    JSONValue,
    PushedRequest,
    RefreshGrant,
    RefreshToken,
    ReuseDetected,
    Rotated,
    RotationRefused,
    RotationResult,
    RotationRetried,
    Stores,
)

from .cipher import SuccessorCipher
from .engine import ConnectionSource, EngineSource, SessionSource, SqlSource, check_dialect
from .tables import authorization_codes as codes_t
from .tables import dpop_nonces as nonces_t
from .tables import pushed_requests as requests_t
from .tables import refresh_family_revocations as tombs_t
from .tables import refresh_tokens as rt_t
from .tables import replays as replays_t
from .tables import revoked_access_tokens as denied_t

__all__ = [
    "SqlCodeStore",
    "SqlNonceStore",
    "SqlPushedRequestStore",
    "SqlRefreshTokenStore",
    "SqlReplayStore",
    "SqlRevokedAccessTokenStore",
    "SqlStorage",
]

# pg_advisory_xact_lock(int4, int4): the first key names our lock space ("ATRF").
_FAMILY_LOCK_CLASS = 0x41545246
_MAX_KEY = 255


def _has_nul(*values: str) -> bool:
    # PostgreSQL refuses NUL in text: such a value can only be unknown, never an error.
    return any("\x00" in v for v in values)


class _Statements:
    """Every statement of the stores, built once for one dialect."""

    def __init__(self, dialect: str) -> None:
        def insert(table: Table) -> postgresql.Insert | sqlite.Insert:
            return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)

        now = bindparam("now", type_=BigInteger)

        # codes
        self.code_insert = insert(codes_t).on_conflict_do_nothing().returning(codes_t.c.code_hash)
        self.code_take = (
            update(codes_t)
            .where(
                codes_t.c.code_hash == bindparam("h"),
                codes_t.c.consumed_at.is_(None),
                codes_t.c.expires_at > now,
            )
            .values(consumed_at=now)
            .returning(codes_t.c.client_id, codes_t.c.subject, codes_t.c.expires_at, codes_t.c.data)
        )
        self.code_inspect = select(
            codes_t.c.client_id,
            codes_t.c.subject,
            codes_t.c.consumed_at,
            codes_t.c.finalized,
            codes_t.c.family_id,
            codes_t.c.access_tokens,
        ).where(codes_t.c.code_hash == bindparam("h"))
        self.code_finalize = (
            update(codes_t)
            .where(
                codes_t.c.code_hash == bindparam("h"),
                codes_t.c.consumed_at.is_not(None),
                codes_t.c.finalized.is_(False),
            )
            .values(
                finalized=True,
                family_id=bindparam("p_family", type_=String),
                access_tokens=bindparam("p_tokens", type_=JSON),
            )
            .returning(codes_t.c.code_hash)
        )

        # refresh tokens
        rt_cols = (
            rt_t.c.family_id,
            rt_t.c.generation,
            rt_t.c.client_id,
            rt_t.c.subject,
            rt_t.c.issued_at,
            rt_t.c.expires_at,
            rt_t.c.family_expires_at,
            rt_t.c.consumed_at,
            rt_t.c.data,
        )
        revoked = exists().where(tombs_t.c.family_id == rt_t.c.family_id)
        self.rt_insert = insert(rt_t).on_conflict_do_nothing().returning(rt_t.c.token_hash)
        self.tomb_exists = select(tombs_t.c.family_id).where(tombs_t.c.family_id == bindparam("f"))
        self.rt_get = select(*rt_cols).where(
            rt_t.c.token_hash == bindparam("h"), rt_t.c.expires_at > now, ~revoked
        )
        family_columns: list[Any] = [rt_t.c.family_id, revoked.label("revoked")]
        if dialect == "postgresql":
            # Locked here, as the row is found: every rotation, retry and reuse decision of
            # a family runs one at a time, until the transaction ends.
            family_columns.append(
                func.pg_advisory_xact_lock(_FAMILY_LOCK_CLASS, func.hashtext(rt_t.c.family_id))
            )
        self.rt_lock_family = select(*family_columns).where(rt_t.c.token_hash == bindparam("h"))
        self.rt_claim = (
            update(rt_t)
            .where(
                rt_t.c.token_hash == bindparam("h"),
                rt_t.c.consumed_at.is_(None),
                rt_t.c.expires_at > now,
            )
            .values(
                consumed_at=now,
                retry_until=bindparam("p_retry_until", type_=BigInteger),
                successor_hash=bindparam("p_successor_hash", type_=String),
                successor=bindparam("p_successor", type_=LargeBinary),
            )
            .returning(*rt_cols)
        )
        parent, child = rt_t.alias("parent"), rt_t.alias("child")
        self.rt_inspect = (
            select(
                parent.c.consumed_at,
                parent.c.retry_until,
                parent.c.successor_hash,
                parent.c.successor,
                *(c.label(f"child_{c.name}") for c in (child.c[col.name] for col in rt_cols)),
            )
            .select_from(parent.outerjoin(child, child.c.token_hash == parent.c.successor_hash))
            .where(parent.c.token_hash == bindparam("h"))
        )
        self.rt_family_of = select(rt_t.c.family_id).where(rt_t.c.token_hash == bindparam("h"))
        self.tomb_insert = (
            insert(tombs_t)
            .values(family_id=bindparam("f", type_=String), revoked_at=now)
            .on_conflict_do_nothing()
        )
        self.tomb_for_owner = (
            insert(tombs_t)
            .from_select(
                ["family_id", "revoked_at"],
                select(rt_t.c.family_id, now)
                .where(rt_t.c.subject == bindparam("s"), rt_t.c.client_id == bindparam("c"))
                .distinct(),
            )
            .on_conflict_do_nothing()
            .returning(tombs_t.c.family_id)
        )

        # nonces, replay keys, denylist
        self.nonce_insert = insert(nonces_t)
        self.nonce_check = select(nonces_t.c.nonce).where(
            nonces_t.c.nonce == bindparam("n"), nonces_t.c.expires_at > now
        )
        self.replay_insert = insert(replays_t).on_conflict_do_nothing().returning(replays_t.c.key)
        self.denied_insert = insert(denied_t).on_conflict_do_nothing()
        self.denied_check = select(denied_t.c.jti).where(denied_t.c.jti == bindparam("j"))

        # pushed / pending authorization requests
        live_request = (
            requests_t.c.reference_hash == bindparam("h"),
            requests_t.c.client_id == bindparam("c"),
            requests_t.c.expires_at > now,
        )
        request_cols = (requests_t.c.pushed, requests_t.c.expires_at, requests_t.c.params)
        self.request_insert = (
            insert(requests_t).on_conflict_do_nothing().returning(requests_t.c.reference_hash)
        )
        self.request_fetch = select(*request_cols).where(*live_request)
        self.request_take = delete(requests_t).where(*live_request).returning(*request_cols)


_STATEMENTS: dict[str, _Statements] = {}


def _statements(dialect: str) -> _Statements:
    found = _STATEMENTS.get(dialect)
    if found is None:
        found = _STATEMENTS[dialect] = _Statements(dialect)
    return found


# Entry <-> row ----------


def _code_data(entry: AuthorizationCode) -> dict[str, JSONValue]:
    return {
        "redirect_uri": entry.redirect_uri,
        "scope": list(entry.scope),
        "resource": list(entry.resource),
        "code_challenge": entry.code_challenge,
        "nonce": entry.nonce,
        "dpop_jkt": entry.dpop_jkt,
        "auth_time": entry.auth_time,
        "acr": entry.acr,
        "extra": dict(entry.extra),
    }


def _code_entry(client_id: str, subject: str, expires_at: int, data: Any) -> AuthorizationCode:
    return AuthorizationCode(
        client_id=client_id,
        subject=subject,
        redirect_uri=data["redirect_uri"],
        scope=tuple(data["scope"]),
        expires_at=expires_at,
        resource=tuple(data["resource"]),
        code_challenge=data["code_challenge"],
        nonce=data["nonce"],
        dpop_jkt=data["dpop_jkt"],
        auth_time=data["auth_time"],
        acr=data["acr"],
        extra=data["extra"],
    )


def _grant_data(grant: RefreshGrant) -> dict[str, JSONValue]:
    return {
        "scope": list(grant.scope),
        "resource": list(grant.resource),
        "dpop_jkt": grant.dpop_jkt,
        "x5t_s256": grant.x5t_s256,
        "auth_time": grant.auth_time,
        "acr": grant.acr,
        "extra": dict(grant.extra),
    }


def _refresh_row(token_hash: str, entry: RefreshToken) -> dict[str, Any]:
    return {
        "token_hash": token_hash,
        "family_id": entry.family_id,
        "generation": entry.generation,
        "client_id": entry.grant.client_id,
        "subject": entry.grant.subject,
        "issued_at": entry.issued_at,
        "expires_at": entry.expires_at,
        "family_expires_at": entry.family_expires_at,
        "consumed_at": entry.consumed_at,
        "retry_until": None,
        "successor_hash": None,
        "successor": None,
        "data": _grant_data(entry.grant),
    }


def _refresh_entry(values: tuple[Any, ...]) -> RefreshToken:
    """From the columns of ``rt_cols``, in that order."""
    family_id, generation, client_id, subject, issued, expires, family_expires, consumed, data = (
        values
    )
    return RefreshToken(
        family_id=family_id,
        generation=generation,
        grant=RefreshGrant(
            client_id=client_id,
            subject=subject,
            scope=tuple(data["scope"]),
            resource=tuple(data["resource"]),
            dpop_jkt=data["dpop_jkt"],
            x5t_s256=data["x5t_s256"],
            auth_time=data["auth_time"],
            acr=data["acr"],
            extra=data["extra"],
        ),
        issued_at=issued,
        expires_at=expires,
        family_expires_at=family_expires,
        consumed_at=consumed,
    )


def _pushed(client_id: str, row: Any) -> PushedRequest:
    pushed, expires_at, params = row
    return PushedRequest(client_id=client_id, params=params, expires_at=expires_at, pushed=pushed)


# Stores ----------


class _SqlStore:
    __slots__ = ("_clock", "_s", "_source")

    def __init__(self, source: SqlSource, statements: _Statements, clock: Clock) -> None:
        self._source = source
        self._s = statements
        self._clock = clock


class SqlReplayStore(_SqlStore):
    """:class:`~pyramid_attesto.core.stores.ReplayStore` on a primary key."""

    __slots__ = ()

    def check_and_record(self, key: str, expires_at: int) -> bool:
        if len(key) > _MAX_KEY or _has_nul(key):
            raise ValueError("a replay key is a digest of at most 255 characters")
        with self._source.begin(True) as conn:
            row = conn.execute(self._s.replay_insert, {"key": key, "expires_at": expires_at})
            return row.first() is not None


class SqlNonceStore(_SqlStore):
    """:class:`~pyramid_attesto.core.stores.DPoPNonceStore` in a table."""

    __slots__ = ()

    def issue(self, ttl: int) -> str:
        nonce = generate_secret()
        expires_at = int(self._clock.now()) + ttl
        with self._source.begin(True) as conn:
            conn.execute(self._s.nonce_insert, {"nonce": nonce, "expires_at": expires_at})
        return nonce

    def check(self, nonce: str) -> bool:
        if len(nonce) > 64 or _has_nul(nonce):
            return False
        with self._source.begin(False) as conn:
            found = conn.execute(
                self._s.nonce_check, {"n": nonce, "now": int(self._clock.now())}
            ).first()
        return found is not None


class SqlRevokedAccessTokenStore(_SqlStore):
    """:class:`~pyramid_attesto.core.stores.RevokedAccessTokenStore` in a table."""

    __slots__ = ()

    def add(self, jti: str, expires_at: int) -> None:
        if len(jti) > _MAX_KEY or _has_nul(jti):
            raise ValueError("a jti of at most 255 characters without NUL is expected")
        with self._source.begin(True) as conn:
            conn.execute(self._s.denied_insert, {"jti": jti, "expires_at": expires_at})

    def is_revoked(self, jti: str) -> bool:
        if len(jti) > _MAX_KEY or _has_nul(jti):
            return False
        with self._source.begin(False) as conn:
            return conn.execute(self._s.denied_check, {"j": jti}).first() is not None


class SqlCodeStore(_SqlStore):
    """:class:`~pyramid_attesto.core.stores.AuthorizationCodeStore` in a table."""

    __slots__ = ()

    def put(self, code: str, entry: AuthorizationCode) -> None:
        params = {
            "code_hash": hash_secret(code),
            "client_id": entry.client_id,
            "subject": entry.subject,
            "expires_at": entry.expires_at,
            "consumed_at": None,
            "finalized": False,
            "family_id": None,
            "access_tokens": None,
            "data": _code_data(entry),
        }
        with self._source.begin(True) as conn:
            inserted = conn.execute(self._s.code_insert, params).first()
        if inserted is None:
            raise ValueError("an authorization code with this value already exists")

    def take(self, code: str) -> CodeTakeResult:
        params = {"h": hash_secret(code), "now": int(self._clock.now())}
        with self._source.begin(True) as conn:
            row = conn.execute(self._s.code_take, params).first()
            if row is not None:
                return CodeTaken(_code_entry(*row))
            seen = conn.execute(self._s.code_inspect, params).first()
        if seen is None:
            return CodeRefused("unknown")
        client_id, subject, consumed_at, finalized, family_id, tokens = seen
        if consumed_at is None:
            return CodeRefused("expired")
        if not finalized:
            return CodeRefused("consumed")
        issued = tuple(IssuedAccessToken(jti, exp) for jti, exp in tokens or ())
        return CodeReused(client_id, subject, family_id, issued)

    def finalize(
        self,
        code: str,
        *,
        family_id: str | None,
        access_tokens: tuple[IssuedAccessToken, ...],
    ) -> bool:
        params = {
            "h": hash_secret(code),
            "p_family": family_id,
            "p_tokens": [[t.jti, t.expires_at] for t in access_tokens],
        }
        with self._source.begin(True) as conn:
            return conn.execute(self._s.code_finalize, params).first() is not None


class SqlRefreshTokenStore(_SqlStore):
    """:class:`~pyramid_attesto.core.stores.RefreshTokenStore` in two tables: the tokens and
    the family tombstones."""

    __slots__ = ("_cipher",)

    def __init__(
        self,
        source: SqlSource,
        statements: _Statements,
        clock: Clock,
        cipher: SuccessorCipher | None,
    ) -> None:
        super().__init__(source, statements, clock)
        self._cipher = cipher

    def put(self, token: str, entry: RefreshToken) -> bool:
        if entry.generation != 0 or entry.consumed_at is not None:
            raise ValueError("put stores the first, unconsumed token of a family")
        with self._source.begin(True) as conn:
            if conn.execute(self._s.tomb_exists, {"f": entry.family_id}).first() is not None:
                return False
            row = conn.execute(self._s.rt_insert, _refresh_row(hash_secret(token), entry))
            return row.first() is not None

    def get(self, token: str) -> RefreshToken | None:
        params = {"h": hash_secret(token), "now": int(self._clock.now())}
        with self._source.begin(False) as conn:
            row = conn.execute(self._s.rt_get, params).first()
        return None if row is None else _refresh_entry(tuple(row))

    def rotate(
        self,
        parent: str,
        child: str,
        *,
        expires_at: int,
        grant: RefreshGrant | None = None,
        grace: int = 0,
    ) -> RotationResult:
        s = self._s
        parent_hash, child_hash = hash_secret(parent), hash_secret(child)
        now = int(self._clock.now())
        with self._source.begin(True) as conn:
            found = conn.execute(s.rt_lock_family, {"h": parent_hash}).first()
            if found is None:
                return RotationRefused("unknown")
            family_id, revoked = found[0], found[1]
            if revoked:
                return RotationRefused("revoked")
            sealed = retry_until = None
            if grace > 0 and self._cipher is not None:
                sealed = self._cipher.seal(child, parent_hash=parent_hash, child_hash=child_hash)
                retry_until = now + grace
            claimed = conn.execute(
                s.rt_claim,
                {
                    "h": parent_hash,
                    "now": now,
                    "p_retry_until": retry_until,
                    "p_successor_hash": child_hash,
                    "p_successor": sealed,
                },
            ).first()
            if claimed is None:
                return self._not_claimed(conn, parent_hash, family_id, now)
            consumed = _refresh_entry(tuple(claimed))
            child_entry = RefreshToken(
                family_id=family_id,
                generation=consumed.generation + 1,
                grant=grant if grant is not None else consumed.grant,
                issued_at=now,
                expires_at=min(expires_at, consumed.family_expires_at),
                family_expires_at=consumed.family_expires_at,
            )
            inserted = conn.execute(s.rt_insert, _refresh_row(child_hash, child_entry)).first()
            if inserted is None:
                # (family, generation) taken: the family's history is not a chain any more.
                conn.execute(s.tomb_insert, {"f": family_id, "now": now})
                return ReuseDetected(family_id)
            return Rotated(consumed, child_entry)

    def _not_claimed(self, conn: Any, parent_hash: str, family_id: str, now: int) -> RotationResult:
        row = conn.execute(self._s.rt_inspect, {"h": parent_hash}).first()
        consumed_at, retry_until, successor_hash, sealed = row[0], row[1], row[2], row[3]
        if consumed_at is None:
            return RotationRefused("expired")
        child_values = tuple(row[4:])
        child_live = (
            child_values[0] is not None  # the successor row exists
            and child_values[7] is None  # ... unused
            and now < child_values[5]  # ... and unexpired
        )
        if retry_until is not None and now <= retry_until and sealed is not None and child_live:
            if self._cipher is None:
                return RotationRefused("retry_unavailable")
            token = self._cipher.open(
                bytes(sealed), parent_hash=parent_hash, child_hash=successor_hash
            )
            if token is None:
                return RotationRefused("retry_unavailable")
            return RotationRetried(token, _refresh_entry(child_values))
        conn.execute(self._s.tomb_insert, {"f": family_id, "now": now})
        return ReuseDetected(family_id)

    def revoke_family(self, family_id: str) -> None:
        with self._source.begin(True) as conn:
            conn.execute(self._s.tomb_insert, {"f": family_id, "now": int(self._clock.now())})

    def revoke_token(self, token: str) -> str | None:
        with self._source.begin(True) as conn:
            row = conn.execute(self._s.rt_family_of, {"h": hash_secret(token)}).first()
            if row is None:
                return None
            family_id: str = row[0]
            conn.execute(self._s.tomb_insert, {"f": family_id, "now": int(self._clock.now())})
        return family_id

    def revoke_for(self, subject: str, client_id: str) -> int:
        if _has_nul(subject, client_id):
            return 0
        params = {"s": subject, "c": client_id, "now": int(self._clock.now())}
        with self._source.begin(True) as conn:
            return len(conn.execute(self._s.tomb_for_owner, params).all())


class SqlPushedRequestStore(_SqlStore):
    """:class:`~pyramid_attesto.core.stores.PushedRequestStore` in a table."""

    __slots__ = ()

    def put(self, reference: str, entry: PushedRequest) -> None:
        params = {
            "reference_hash": hash_secret(reference),
            "client_id": entry.client_id,
            "pushed": entry.pushed,
            "expires_at": entry.expires_at,
            "params": dict(entry.params),
        }
        with self._source.begin(True) as conn:
            inserted = conn.execute(self._s.request_insert, params).first()
        if inserted is None:
            raise ValueError("a request with this reference already exists")

    def fetch(self, reference: str, client_id: str) -> PushedRequest | None:
        if _has_nul(client_id):
            return None
        params = {"h": hash_secret(reference), "c": client_id, "now": int(self._clock.now())}
        with self._source.begin(False) as conn:
            row = conn.execute(self._s.request_fetch, params).first()
        return None if row is None else _pushed(client_id, row)

    def take(self, reference: str, client_id: str) -> PushedRequest | None:
        if _has_nul(client_id):
            return None
        params = {"h": hash_secret(reference), "c": client_id, "now": int(self._clock.now())}
        with self._source.begin(True) as conn:
            row = conn.execute(self._s.request_take, params).first()
        return None if row is None else _pushed(client_id, row)


# The bundle ----------


class SqlStorage:
    """The six SQL stores' shared, long-lived part; :meth:`bind` them to a transaction.

    >>> from pyramid_attesto.storage.engine import make_engine
    >>> storage = SqlStorage(make_engine("sqlite://"))
    >>> storage.dialect
    'sqlite'

    ``dialect`` is an engine or a dialect name (``"postgresql"`` or ``"sqlite"``; any
    other raises :class:`~pyramid_attesto.core.errors.ConfigurationError`).
    ``successor_secret`` (at least 32 bytes) enables the refresh grace window (D12).
    """

    def __init__(
        self,
        dialect: Engine | str,
        *,
        clock: Clock | None = None,
        successor_secret: str | bytes | None = None,
    ) -> None:
        name = dialect if isinstance(dialect, str) else dialect.dialect.name
        check_dialect(name)
        self.dialect = name
        self._statements = _statements(name)
        self._clock = clock if clock is not None else SystemClock()
        self._cipher = SuccessorCipher(successor_secret) if successor_secret else None

    def bind(self, source: SqlSource) -> Stores:
        """The stores, running through ``source``."""
        s, clock = self._statements, self._clock
        return Stores(
            codes=SqlCodeStore(source, s, clock),
            refresh_tokens=SqlRefreshTokenStore(source, s, clock, self._cipher),
            nonces=SqlNonceStore(source, s, clock),
            replay=SqlReplayStore(source, s, clock),
            requests=SqlPushedRequestStore(source, s, clock),
            revoked_access_tokens=SqlRevokedAccessTokenStore(source, s, clock),
        )

    def for_session(self, session: Session, *, zope: bool = True) -> Stores:
        """The stores in ``session``'s transaction (a request's ``dbsession``)."""
        return self.bind(SessionSource(session, zope=zope))

    def for_connection(self, connection: Any) -> Stores:
        """The stores on a connection whose transaction the caller manages."""
        return self.bind(ConnectionSource(connection))

    def for_engine(self, engine: Engine) -> Stores:
        """The stores, each operation in its own transaction (scripts, the RS replay claim)."""
        return self.bind(EngineSource(engine))
