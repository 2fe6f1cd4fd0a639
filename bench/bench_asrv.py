"""The authorization server through the WSGI app: client_credentials issuance and
authorization-code redemption (with its refresh token), on SQLite and, when
``ATTESTO_TEST_POSTGRESQL_URL`` is set, PostgreSQL.

Each path is compared with the sum of its parts' floors, measured in the same run
(DESIGN.md D22): a minimal Pyramid JSON view under pyramid_tm called the same way (dispatch,
form body, transaction), the SQLAlchemy Core statements of the grant's store operations on
one connection in one transaction, and one ES256 access-token signature. Target: 1.5x.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from sqlalchemy import text
from webob import Request

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import SystemClock
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.secret import constant_time_equals, hash_secret
from pyramid_attesto.core.stores import AuthorizationCode, IssuedAccessToken, RefreshGrant
from pyramid_attesto.core.stores import RefreshToken as RefreshEntry
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter, new_jti
from pyramid_attesto.server import get_server
from pyramid_attesto.storage import SqlStorage, make_engine, metadata

from ._harness import Row, measure, print_rows

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
NUMBER, ROUNDS = 200, 5


class _Clients:
    def load_client(self, client_id: str) -> Client | None:
        return CLIENTS.get(client_id)

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        return constant_time_equals(hash_secret(secret), SECRET_HASH)

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return None


def _app(url: str, keystore: StaticKeystore) -> Any:
    settings = {
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
        config.add_route("ping", "/ping")
        config.add_view(
            lambda request: Response(json={"ok": 1}), route_name="ping", request_method="POST"
        )
    return config.make_wsgi_app()


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


def _rows(label: str, url: str) -> list[Row]:
    keystore = StaticKeystore([private_signer(generate_key("ES256"))])
    app = _app(url, keystore)
    engine = get_server(app.registry).stores.engine
    metadata.create_all(engine)
    storage = SqlStorage(engine)
    minter = AccessTokenMinter(keystore, issuer=ISSUER, clock=SystemClock())
    claims = AccessTokenClaims(subject="svc", client_id="svc", audience=ISSUER, scopes=("read",))
    basic = "Basic " + base64.b64encode(f"svc:{SECRET}".encode()).decode()

    ping = measure(_post(app, "/ping", b"grant_type=client_credentials"), number=NUMBER * 5)
    sign = measure(lambda: minter.mint(claims), number=NUMBER * 5)
    cc = measure(
        _post(app, "/oauth/token", b"grant_type=client_credentials", Authorization=basic),
        number=NUMBER,
        rounds=ROUNDS,
    )

    total = (NUMBER + min(NUMBER, 200)) * ROUNDS + 400
    app_codes = _codes(storage, engine, total)
    floor_codes = _codes(storage, engine, total)

    def redeem() -> int:
        body = (
            f"grant_type=authorization_code&code={next(app_codes)}"
            f"&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}&client_id=pub"
        ).encode()
        return _post(app, "/oauth/token", body)()

    def store_ops() -> None:
        now = int(time.time())
        with engine.begin() as connection:
            stores = storage.for_connection(connection)
            code = next(floor_codes)
            stores.codes.take(code)
            grant = RefreshGrant(client_id="pub", subject="alice", scope=("read",))
            stores.refresh_tokens.put(
                secrets.token_urlsafe(32),
                RefreshEntry(new_jti(), 0, grant, now, now + 3600, now + 7200),
            )
            stores.codes.finalize(
                code, family_id=None, access_tokens=(IssuedAccessToken(new_jti(), now + 900),)
            )

    code_ms = measure(redeem, number=NUMBER, rounds=ROUNDS)
    ops = measure(store_ops, number=NUMBER, rounds=ROUNDS)
    engine.dispose()
    return [
        Row(f"[{label}] floor: pyramid_tm JSON view (POST form)", ping),
        Row(f"[{label}] floor: ES256 access-token mint", sign),
        Row(f"[{label}] floor: code take+refresh put+finalize, 1 txn", ops),
        Row(f"[{label}] client_credentials (basic, Bearer)", cc, ping + sign, TARGET),
        Row(f"[{label}] authorization_code + refresh (PKCE)", code_ms, ping + sign + ops, TARGET),
    ]


def main() -> None:
    logging.getLogger("pyramid_attesto").setLevel(logging.ERROR)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += _rows("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")
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
    assert itertools is not None
