"""Store operations against the SQLAlchemy Core statements that do the same work (D22).

Each operation runs on one connection inside one open transaction (the request transaction
the stores join in production), through :meth:`SqlStorage.for_connection`; its floor executes
equivalent prebuilt Core statements, written here, on the same connection in the same
transaction, with the keys already hashed and the JSON already built. Every call works on a
fresh key (a code is taken once...), so nothing is served from a cache. Target: 1.3x.

SQLite runs on a WAL file in a temporary directory. PostgreSQL uses
``$ATTESTO_BENCH_POSTGRESQL_URL`` (or ``$ATTESTO_TEST_POSTGRESQL_URL``) in a schema of its own,
dropped at the end; without either it is skipped.
"""

from __future__ import annotations

import gc
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import transaction
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Engine,
    LargeBinary,
    String,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

from bench._harness import Row, print_rows
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.secret import hash_secret
from pyramid_attesto.core.stores import (
    AuthorizationCode,
    IssuedAccessToken,
    PushedRequest,
    RefreshGrant,
    RefreshToken,
    Stores,
)
from pyramid_attesto.storage import (
    SqlStorage,
    get_tm_session,
    make_engine,
    make_session_factory,
    metadata,
)
from pyramid_attesto.storage.tables import (
    authorization_codes as codes_t,
)
from pyramid_attesto.storage.tables import (
    dpop_nonces as nonces_t,
)
from pyramid_attesto.storage.tables import (
    pushed_requests as requests_t,
)
from pyramid_attesto.storage.tables import (
    refresh_family_revocations as tombs_t,
)
from pyramid_attesto.storage.tables import (
    refresh_tokens as rt_t,
)
from pyramid_attesto.storage.tables import (
    replays as replays_t,
)
from pyramid_attesto.storage.tables import (
    revoked_access_tokens as denied_t,
)

TARGET = 1.3
WARMUP = 100
NUMBER = 150
ROUNDS = 7
CALLS = WARMUP + NUMBER * ROUNDS
NOW = 1_700_000_000

CODE = AuthorizationCode(
    client_id="client-1",
    subject="user:42",
    redirect_uri="https://app.example/cb",
    scope=("openid", "read:reports"),
    expires_at=NOW + 60,
    resource=("https://api.example/",),
    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    nonce="n-0S6_WzA2Mj",
    dpop_jkt="0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
)
CODE_DATA: dict[str, Any] = {
    "redirect_uri": CODE.redirect_uri,
    "scope": list(CODE.scope),
    "resource": list(CODE.resource),
    "code_challenge": CODE.code_challenge,
    "nonce": CODE.nonce,
    "dpop_jkt": CODE.dpop_jkt,
    "auth_time": None,
    "acr": None,
    "extra": {},
}
GRANT = RefreshGrant("client-1", "user:42", ("openid", "offline_access"))
GRANT_DATA: dict[str, Any] = {
    "scope": list(GRANT.scope),
    "resource": [],
    "dpop_jkt": None,
    "x5t_s256": None,
    "auth_time": None,
    "acr": None,
    "extra": {},
}
ISSUED = (IssuedAccessToken("jti-1", NOW + 900),)
PARAMS: dict[str, Any] = {"response_type": "code", "scope": "openid", "state": "xyz"}


def _keys(prefix: str, n: int = CALLS) -> list[str]:
    tag = secrets.token_hex(4)
    return [f"{prefix}-{tag}-{i}" for i in range(n)]


def _next(values: list[str]) -> Callable[[], str]:
    it: Iterator[str] = iter(values)
    return lambda: next(it)


class Floors:
    """Core statements doing each operation's work, written independently of the stores.

    Their parameters are named apart from the stores' (``f_...``): a statement equal to one
    of the stores' would share its compiled-cache entry, and whichever ran second would pay
    SQLAlchemy's result-metadata adaptation on every call, a cost neither has alone.
    """

    def __init__(self, dialect: str) -> None:
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        now = bindparam("f_now", type_=BigInteger)
        self.replay = (
            ins(replays_t)
            .values(_binds(replays_t))
            .on_conflict_do_nothing()
            .returning(replays_t.c.key)
        )
        self.nonce_insert = insert(nonces_t).values(_binds(nonces_t))
        self.nonce_check = select(nonces_t.c.nonce).where(
            nonces_t.c.nonce == bindparam("f_n"), nonces_t.c.expires_at > now
        )
        self.code_insert = (
            ins(codes_t)
            .values(_binds(codes_t))
            .on_conflict_do_nothing()
            .returning(codes_t.c.code_hash)
        )
        self.code_take = (
            update(codes_t)
            .where(
                codes_t.c.code_hash == bindparam("f_h"),
                codes_t.c.consumed_at.is_(None),
                codes_t.c.expires_at > now,
            )
            .values(consumed_at=now)
            .returning(codes_t.c.client_id, codes_t.c.subject, codes_t.c.expires_at, codes_t.c.data)
        )
        self.code_finalize = (
            update(codes_t)
            .where(
                codes_t.c.code_hash == bindparam("f_h"),
                codes_t.c.consumed_at.is_not(None),
                codes_t.c.finalized.is_(False),
            )
            .values(
                finalized=True,
                family_id=bindparam("f_f", type_=String),
                access_tokens=bindparam("f_t", type_=JSON),
            )
            .returning(codes_t.c.code_hash)
        )
        self.tomb = select(tombs_t.c.family_id).where(tombs_t.c.family_id == bindparam("f_f"))
        self.rt_insert = (
            ins(rt_t).values(_binds(rt_t)).on_conflict_do_nothing().returning(rt_t.c.token_hash)
        )
        revoked = exists().where(tombs_t.c.family_id == rt_t.c.family_id)
        rt_cols = [c for c in rt_t.c if c.name not in ("token_hash", "successor", "retry_until")]
        self.rt_get = select(*rt_cols).where(
            rt_t.c.token_hash == bindparam("f_h"), rt_t.c.expires_at > now, ~revoked
        )
        lock: list[Any] = [rt_t.c.family_id, revoked]
        if dialect == "postgresql":
            lock.append(func.pg_advisory_xact_lock(1, func.hashtext(rt_t.c.family_id)))
        self.rt_lock = select(*lock).where(rt_t.c.token_hash == bindparam("f_h"))
        self.rt_claim = (
            update(rt_t)
            .where(
                rt_t.c.token_hash == bindparam("f_h"),
                rt_t.c.consumed_at.is_(None),
                rt_t.c.expires_at > now,
            )
            .values(
                consumed_at=now,
                successor_hash=bindparam("f_sh", type_=String),
                successor=bindparam("f_sc", type_=LargeBinary),
            )
            .returning(*rt_cols)
        )
        self.request_insert = (
            ins(requests_t)
            .values(_binds(requests_t))
            .on_conflict_do_nothing()
            .returning(requests_t.c.reference_hash)
        )
        live = (
            requests_t.c.reference_hash == bindparam("f_h"),
            requests_t.c.client_id == bindparam("f_c"),
            requests_t.c.expires_at > now,
        )
        cols = (requests_t.c.pushed, requests_t.c.expires_at, requests_t.c.params)
        self.request_fetch = select(*cols).where(*live)
        self.request_take = delete(requests_t).where(*live).returning(*cols)
        self.denied_insert = ins(denied_t).values(_binds(denied_t)).on_conflict_do_nothing()
        self.denied_check = select(denied_t.c.jti).where(denied_t.c.jti == bindparam("f_j"))


def _binds(table: Table) -> dict[str, Any]:
    return {c.name: bindparam(f"f_{c.name}", type_=c.type) for c in table.c}


def _f(values: dict[str, Any]) -> dict[str, Any]:
    return {f"f_{k}": v for k, v in values.items()}


def _rt_row(token_hash: str, family_id: str, generation: int = 0) -> dict[str, Any]:
    return {
        "f_token_hash": token_hash,
        "f_family_id": family_id,
        "f_generation": generation,
        "f_client_id": GRANT.client_id,
        "f_subject": GRANT.subject,
        "f_issued_at": NOW,
        "f_expires_at": NOW + 3600,
        "f_family_expires_at": NOW + 86_400,
        "f_consumed_at": None,
        "f_retry_until": None,
        "f_successor_hash": None,
        "f_successor": None,
        "f_data": GRANT_DATA,
    }


def _family(token: str, family_id: str) -> RefreshToken:
    return RefreshToken(family_id, 0, GRANT, NOW, NOW + 3600, NOW + 86_400)


def _timed(op: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(NUMBER):
        op()
    return (time.perf_counter() - start) / NUMBER * 1e6


def _pair(name: str, store_op: Callable[[], object], floor_op: Callable[[], object]) -> list[Row]:
    """Median µs per call of each, their rounds alternating so that neither works on a
    table grown by the other (the harness's ``measure`` runs one path's rounds in a row)."""
    for _ in range(WARMUP):
        floor_op()
        store_op()
    floors, costs = [], []
    gc.disable()
    try:
        for _ in range(ROUNDS):
            floors.append(_timed(floor_op))
            costs.append(_timed(store_op))
    finally:
        gc.enable()
    return [Row(name, statistics.median(costs), statistics.median(floors), TARGET)]


def _rows(conn: Connection, stores: Stores, f: Floors) -> list[Row]:
    rows: list[Row] = []
    x = conn.execute
    hashed = {}

    def pre_hashed(keys: list[str]) -> list[str]:
        out = [hash_secret(k) for k in keys]
        hashed.update(zip(out, keys, strict=True))
        return out

    # replay: first use, and a replayed key
    store_keys, floor_keys = _next(_keys("rp")), _next(_keys("rf"))
    rows += _pair(
        "replay.check_and_record (first use)",
        lambda: stores.replay.check_and_record(store_keys(), NOW + 120),
        lambda: x(f.replay, {"f_key": floor_keys(), "f_expires_at": NOW + 120}).first(),
    )
    rows += _pair(
        "replay.check_and_record (replay)",
        lambda: stores.replay.check_and_record("rp-seen", NOW + 120),
        lambda: x(f.replay, {"f_key": "rp-seen", "f_expires_at": NOW + 120}).first(),
    )

    # nonces
    nonce_keys = _next(_keys("n"))
    rows += _pair(
        "nonces.issue",
        lambda: stores.nonces.issue(300),
        lambda: x(f.nonce_insert, {"f_nonce": nonce_keys(), "f_expires_at": NOW + 300}),
    )
    live_nonce = stores.nonces.issue(300)
    rows += _pair(
        "nonces.check",
        lambda: stores.nonces.check(live_nonce),
        lambda: x(f.nonce_check, {"f_n": live_nonce, "f_now": NOW}).first(),
    )

    # authorization codes
    store_codes, floor_codes = _keys("c"), _keys("cf")
    put_store, put_floor = _next(store_codes), _next(pre_hashed(floor_codes))
    code_row = _f(
        {
            "client_id": CODE.client_id,
            "subject": CODE.subject,
            "expires_at": CODE.expires_at,
            "consumed_at": None,
            "finalized": False,
            "family_id": None,
            "access_tokens": None,
            "data": CODE_DATA,
        }
    )
    rows += _pair(
        "codes.put",
        lambda: stores.codes.put(put_store(), CODE),
        lambda: x(f.code_insert, {"f_code_hash": put_floor(), **code_row}).first(),
    )
    take_store, take_floor = _next(store_codes), _next([hash_secret(c) for c in floor_codes])
    rows += _pair(
        "codes.take",
        lambda: stores.codes.take(take_store()),
        lambda: x(f.code_take, {"f_h": take_floor(), "f_now": NOW}).first(),
    )
    fin_store, fin_floor = _next(store_codes), _next([hash_secret(c) for c in floor_codes])
    rows += _pair(
        "codes.finalize",
        lambda: stores.codes.finalize(fin_store(), family_id="fam", access_tokens=ISSUED),
        lambda: x(
            f.code_finalize, {"f_h": fin_floor(), "f_f": "fam", "f_t": [["jti-1", NOW + 900]]}
        ).first(),
    )

    # refresh tokens
    store_rts, floor_rts = _keys("r"), _keys("rf")
    rt_store, rt_floor = _next(store_rts), _next([hash_secret(t) for t in floor_rts])
    families = _next(_keys("fam", 2 * CALLS))

    def floor_put() -> None:
        family_id = families()
        x(f.tomb, {"f_f": family_id}).first()
        x(f.rt_insert, _rt_row(rt_floor(), family_id)).first()

    rows += _pair(
        "refresh_tokens.put",
        lambda: stores.refresh_tokens.put(rt_store(), _family("", families())),
        floor_put,
    )
    get_store, get_floor = _next(store_rts), _next([hash_secret(t) for t in floor_rts])
    rows += _pair(
        "refresh_tokens.get",
        lambda: stores.refresh_tokens.get(get_store()),
        lambda: x(f.rt_get, {"f_h": get_floor(), "f_now": NOW}).first(),
    )
    rot_store = _next(store_rts)
    rot_floor = _next([hash_secret(t) for t in floor_rts])
    store_children = _next(_keys("child"))
    floor_children = _next([hash_secret(k) for k in _keys("childf")])

    def floor_rotate() -> None:
        parent = rot_floor()
        family_id, _revoked, *_ = x(f.rt_lock, {"f_h": parent}).first()  # type: ignore[misc]
        child = floor_children()
        claimed = x(f.rt_claim, {"f_h": parent, "f_now": NOW, "f_sh": child, "f_sc": None}).first()
        assert claimed is not None
        x(f.rt_insert, _rt_row(child, family_id, claimed.generation + 1)).first()

    rows += _pair(
        "refresh_tokens.rotate (grace 0)",
        lambda: stores.refresh_tokens.rotate(rot_store(), store_children(), expires_at=NOW + 3600),
        floor_rotate,
    )

    # pushed / pending authorization requests
    store_refs, floor_refs = _keys("ref"), _keys("reff")
    ref_store, ref_floor = _next(store_refs), _next([hash_secret(r) for r in floor_refs])
    request = PushedRequest("client-1", PARAMS, NOW + 90)
    rows += _pair(
        "requests.put",
        lambda: stores.requests.put(ref_store(), request),
        lambda: x(
            f.request_insert,
            {
                "f_reference_hash": ref_floor(),
                "f_client_id": "client-1",
                "f_pushed": True,
                "f_expires_at": NOW + 90,
                "f_params": PARAMS,
            },
        ).first(),
    )
    fetch_store, fetch_floor = _next(store_refs), _next([hash_secret(r) for r in floor_refs])
    rows += _pair(
        "requests.fetch",
        lambda: stores.requests.fetch(fetch_store(), "client-1"),
        lambda: x(f.request_fetch, {"f_h": fetch_floor(), "f_c": "client-1", "f_now": NOW}).first(),
    )
    take_s, take_f = _next(store_refs), _next([hash_secret(r) for r in floor_refs])
    rows += _pair(
        "requests.take",
        lambda: stores.requests.take(take_s(), "client-1"),
        lambda: x(f.request_take, {"f_h": take_f(), "f_c": "client-1", "f_now": NOW}).first(),
    )

    # revoked access tokens
    deny_store, deny_floor = _next(_keys("j")), _next(_keys("jf"))
    rows += _pair(
        "revoked_access_tokens.add",
        lambda: stores.revoked_access_tokens.add(deny_store(), NOW + 900),
        lambda: x(f.denied_insert, {"f_jti": deny_floor(), "f_expires_at": NOW + 900}),
    )
    rows += _pair(
        "revoked_access_tokens.is_revoked",
        lambda: stores.revoked_access_tokens.is_revoked("jti-unknown"),
        lambda: x(f.denied_check, {"f_j": "jti-unknown"}).first(),
    )
    return rows


def _run_on_connection(engine: Engine) -> list[Row]:
    """The stores on a connection in an open transaction (``for_connection``)."""
    storage = SqlStorage(engine, clock=FrozenClock(NOW))
    floors = Floors(engine.dialect.name)
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            return _rows(conn, storage.for_connection(conn), floors)
        finally:
            transaction.rollback()


def _run_in_request_session(engine: Engine) -> list[Row]:
    """The stores as a request uses them: a zope.sqlalchemy session in a transaction-manager
    transaction (``for_session``); the floor runs on that session's connection."""
    storage = SqlStorage(engine, clock=FrozenClock(NOW))
    floors = Floors(engine.dialect.name)
    manager = transaction.TransactionManager(explicit=True)
    manager.begin()
    try:
        session = get_tm_session(make_session_factory(engine), manager)
        return _rows(session.connection(), storage.for_session(session), floors)
    finally:
        manager.abort()


def _report(label: str, engine: Engine) -> None:
    metadata.create_all(engine)
    print_rows(f"storage: {label}, for_connection, vs Core", _run_on_connection(engine))
    print_rows(f"storage: {label}, for_session (zope), vs Core", _run_in_request_session(engine))


def _postgresql_url() -> str | None:
    return os.environ.get("ATTESTO_BENCH_POSTGRESQL_URL") or os.environ.get(
        "ATTESTO_TEST_POSTGRESQL_URL"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", poolclass=NullPool)
        try:
            _report("SQLite file (WAL)", engine)
        finally:
            engine.dispose()

    url = _postgresql_url()
    if not url:
        print("\n(PostgreSQL skipped: set ATTESTO_BENCH_POSTGRESQL_URL)")
        return
    schema = f"attesto_bench_{secrets.token_hex(4)}"
    admin = make_engine(url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(
            url, poolclass=NullPool, connect_args={"options": f"-csearch_path={schema}"}
        )
        try:
            _report("PostgreSQL (loopback)", engine)
        finally:
            engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
