"""The authorization server through the WSGI app: client_credentials issuance and
authorization-code redemption (with its refresh token), on SQLite and, when
``ATTESTO_TEST_POSTGRESQL_URL`` is set, PostgreSQL.

Each path is compared with the sum of its parts' floors, measured in the same run, called
in turn with each call timed alone (``_harness.alternating``: a load change on this shared
machine hits a path and its floors alike). The parts (DESIGN.md D22): Pyramid dispatch under
pyramid_tm with a form POST; the grant's store operations as SQLAlchemy Core statements on the
request's connection, in the request's transaction (a zope.sqlalchemy session joined to
pyramid_tm: the product's mandated transaction stack); one access-token signature by joserfc
itself.

The target row measures the parts *together*: a minimal Pyramid view under pyramid_tm that does
exactly those parts and nothing else (no client authentication, no validation), called the same
way. The parts timed apart add up to less than the same parts inside one request (on this VM an
ES256 signature takes ~75 µs in a loop of its own and ~120 µs inside a request, in the floor
view as in ours), so that plain sum is printed too, as information. Target: 1.5x.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import zope.sqlalchemy
from joserfc import jwt
from pyramid.config import Configurator
from pyramid.response import Response
from sqlalchemy import text
from webob import Request

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.keys import LocalSigner, StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.secret import constant_time_equals, hash_secret
from pyramid_attesto.core.stores import AuthorizationCode, IssuedAccessToken, RefreshGrant
from pyramid_attesto.core.stores import RefreshToken as RefreshEntry
from pyramid_attesto.core.tokens import new_jti
from pyramid_attesto.server import get_server
from pyramid_attesto.storage import (
    SqlStorage,
    get_tm_session,
    make_engine,
    make_session_factory,
    metadata,
)

from ._harness import Row, alternating, print_rows, wrk

ISSUER = "https://id.example"
TARGET = 1.5
SECRET = "bench-secret-0123456789abcdef"
VERIFIER = "b" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
CLIENTS = {
    "svc": Client(client_id="svc", grant_types=("client_credentials",), scope="read"),
    "pub": Client(
        client_id="pub",
        token_endpoint_auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/cb",),
        grant_types=("authorization_code", "refresh_token"),
        scope="read",
    ),
}
SECRET_HASH = hash_secret(SECRET)
NUMBER, ROUNDS = 200, 7


class _Clients:
    def load_client(self, client_id: str) -> Client | None:
        return CLIENTS.get(client_id)

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        return constant_time_equals(hash_secret(secret), SECRET_HASH)

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return None


def _app(
    url: str, keystore: StaticKeystore, floors: dict[str, Callable[[Any], Any]], **extra: str
) -> Any:
    settings = {
        **extra,
        "attesto.issuer": ISSUER,
        "attesto.keystore": "(directive)",
        "attesto.sqlalchemy.url": url,
        "attesto.scopes_supported": "read",
        "attesto.grant_types_supported": "authorization_code refresh_token client_credentials",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_keystore(keystore)
        config.set_attesto_client_store(_Clients())
        for name, view in {"ping": lambda request: Response(json={"ok": 1}), **floors}.items():
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name, request_method="POST")
    return config.make_wsgi_app()


def _joserfc_mint(keystore: StaticKeystore) -> Callable[[str], str]:
    """One access token signed by joserfc itself (``jwt.encode``), the same header and claims
    as ours: the signature floor of DESIGN.md D22."""
    signer = cast(LocalSigner, keystore.signer("ES256"))
    header = {"alg": "ES256", "typ": "at+jwt", "kid": signer.kid}

    def mint(subject: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": ISSUER,
            "exp": now + 900,
            "iat": now,
            "nbf": now,
            "jti": new_jti(),
            "client_id": subject,
            "scope": "read",
        }
        return jwt.encode(header, claims, signer.key)

    return mint


def _post(app: Any, path: str, body: bytes, **headers: str) -> Callable[[], int]:
    environ = Request.blank(
        path,
        method="POST",
        body=body,
        content_type="application/x-www-form-urlencoded",
        headers=headers,
        base_url=ISSUER,
    ).environ

    def call() -> int:
        request = Request(dict(environ), body=body)  # a fresh wsgi.input each call
        response = request.get_response(app)
        if response.status_code >= 400:
            raise RuntimeError(response.text)
        return response.status_code

    return call


def _codes(storage: SqlStorage, engine: Any, n: int) -> Iterator[str]:
    codes = [secrets.token_urlsafe(32) for _ in range(n)]
    with engine.begin() as connection:
        stores = storage.for_connection(connection)
        for code in codes:
            stores.codes.put(
                code,
                AuthorizationCode(
                    client_id="pub",
                    subject="alice",
                    redirect_uri="http://127.0.0.1/cb",
                    scope=("read",),
                    expires_at=int(time.time()) + 3600,
                    code_challenge=CHALLENGE.decode(),
                ),
            )
    return iter(codes)


def _store_ops(stores: Any, code: str) -> None:
    """The code grant's store operations: take the code, store the refresh token, finalize."""
    now = int(time.time())
    stores.codes.take(code)
    grant = RefreshGrant(client_id="pub", subject="alice", scope=("read",))
    stores.refresh_tokens.put(
        secrets.token_urlsafe(32), RefreshEntry(new_jti(), 0, grant, now, now + 3600, now + 7200)
    )
    stores.codes.finalize(
        code, family_id=None, access_tokens=(IssuedAccessToken(new_jti(), now + 900),)
    )


def _rows(label: str, url: str) -> list[Row]:
    keystore = StaticKeystore([private_signer(generate_key("ES256"))])
    joserfc_mint = _joserfc_mint(keystore)
    state: dict[str, Any] = {}

    def mint_view(request: Any) -> Response:
        token = joserfc_mint("svc")
        return Response(json={"access_token": token, "token_type": "Bearer", "expires_in": 900})

    def code_view(request: Any) -> Response:
        # The store operations on the request's connection, in the request's transaction
        # (a zope.sqlalchemy session joined to pyramid_tm), then one signature.
        session = get_tm_session(state["sessions"], request.tm, request)
        stores = state["storage"].for_connection(session.connection())
        zope.sqlalchemy.mark_changed(session)
        _store_ops(stores, next(state["floor_codes"]))
        token = joserfc_mint("alice")
        return Response(json={"access_token": token, "token_type": "Bearer", "expires_in": 900})

    app = _app(url, keystore, {"mint_floor": mint_view, "code_floor": code_view})
    engine = get_server(app.registry).stores.engine
    metadata.create_all(engine)
    storage = SqlStorage(engine)
    state.update(storage=storage, sessions=make_session_factory(engine))
    basic = "Basic " + base64.b64encode(f"svc:{SECRET}".encode()).decode()
    signer = cast(LocalSigner, keystore.signer("ES256"))

    total = (NUMBER + 200) * ROUNDS + 400
    app_codes = _codes(storage, engine, total)
    state["floor_codes"] = _codes(storage, engine, total)
    loop_codes = _codes(storage, engine, total)

    def redeem() -> int:
        body = (
            f"grant_type=authorization_code&code={next(app_codes)}"
            f"&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}&client_id=pub"
        ).encode()
        return _post(app, "/oauth/token", body)()

    def store_ops() -> None:
        with engine.begin() as connection:
            _store_ops(storage.for_connection(connection), next(loop_codes))

    form = b"grant_type=client_credentials"
    ping, sign, ops, cc_floor, code_floor, cc, code = alternating(
        [
            _post(app, "/ping", form),
            lambda: jwt.encode({"alg": "ES256", "kid": signer.kid}, {"sub": "svc"}, signer.key),
            store_ops,
            _post(app, "/mint_floor", form),
            _post(app, "/code_floor", form),
            _post(app, "/oauth/token", form, Authorization=basic),
            redeem,
        ],
        number=NUMBER,
        rounds=ROUNDS,
    )
    engine.dispose()
    return [
        Row(f"[{label}] part: pyramid_tm JSON view (POST form)", ping),
        Row(f"[{label}] part: ES256 sign, joserfc jwt.encode", sign),
        Row(f"[{label}] part: code take+refresh put+finalize, 1 txn", ops),
        Row(f"[{label}] floor: tm view + joserfc sign, one request", cc_floor),
        Row(f"[{label}] floor: tm view + store ops in its txn + sign", code_floor),
        Row(f"[{label}] client_credentials vs parts summed (info)", cc, ping + sign),
        Row(f"[{label}] client_credentials (basic, Bearer)", cc, cc_floor, TARGET),
        Row(f"[{label}] auth code + refresh vs parts summed (info)", code, ping + sign + ops),
        Row(f"[{label}] authorization_code + refresh (PKCE)", code, code_floor, TARGET),
    ]


def _wrk(url: str) -> list[str]:
    """waitress + wrk on loopback (bounded): the bare tm view and client_credentials, beside
    the peers measured the same way in shared/reference/perf-floors.md (node-oidc-provider
    3,876 req/s = 258 CPU µs per request; Authlib + Flask 2,070 req/s = 483 µs)."""
    if os.environ.get("ATTESTO_BENCH_WRK") != "1":
        return []
    keystore = StaticKeystore([private_signer(generate_key("ES256"))])
    app = _app(url, keystore, {}, **{"attesto.trusted_proxies": "127.0.0.1"})
    basic = "Basic " + base64.b64encode(f"svc:{SECRET}".encode()).decode()
    # wrk speaks plain HTTP to loopback: the requests come as if through a TLS proxy.
    proxy = {"trusted_proxy": "127.0.0.1", "trusted_proxy_headers": {"x-forwarded-proto"}}
    headers = {"Host": "id.example", "X-Forwarded-Proto": "https"}
    form = "grant_type=client_credentials"
    ping = wrk(app, "/ping", headers=headers, body=form, **proxy)
    cc = wrk(app, "/oauth/token", headers={**headers, "Authorization": basic}, body=form, **proxy)
    get_server(app.registry).stores.engine.dispose()
    return [
        "\n## waitress (4 threads) + wrk -t2 -c20 -d5s, loopback (SQLite)\n",
        f"| pyramid_tm JSON view (POST form)    | {ping} |",
        f"| client_credentials (basic, ES256)   | {cc} |",
    ]


def main() -> None:
    logging.getLogger("pyramid_attesto").setLevel(logging.ERROR)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += _rows("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")
        served = _wrk(f"sqlite:///{Path(tmp) / 'wrk.db'}")
    pg = os.environ.get("ATTESTO_TEST_POSTGRESQL_URL")
    if pg:
        schema = f"attesto_bench_{secrets.token_hex(4)}"
        admin = make_engine(pg)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            from sqlalchemy import make_url

            url = make_url(pg).update_query_dict({"options": f"-csearch_path={schema}"})
            rows += _rows("postgresql", url.render_as_string(hide_password=False))
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print_rows("Authorization server through the WSGI app", rows)
    print("\n".join(served))
