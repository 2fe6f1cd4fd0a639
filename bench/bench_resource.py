"""The resource server through the WSGI app, against the sum of its parts' floors, in one run.

Paths: a protected route (``permission="read:reports"``) reached with an ES256 Bearer token,
and with an ES256 DPoP-bound token and a fresh proof (its replay claimed in the memory store;
separately in the SQLite store, and in PostgreSQL when ``ATTESTO_TEST_POSTGRESQL_URL`` is set).

The parts, measured here, called in turn with each call timed alone
(``_harness.alternating``): a bare Pyramid route (the same JSON view, no security policy) called
as WSGI; the ES256 verify of each signature, raw with ``cryptography`` and by joserfc itself
with an imported key (DESIGN.md D22). The target rows measure the parts *together*: the bare
route whose view verifies the request's token (and proof) with joserfc and nothing else, called
the same way. The parts timed apart add up to less than the same parts inside one request, so
their plain sum is printed too, as information. For the SQL replay claim, one prebuilt
SQLAlchemy Core ``INSERT`` in its own transaction on the same engine. Target: each path <= 1.3x
its floor.

Optionally (``ATTESTO_BENCH_WRK=1`` and ``wrk`` on the PATH): waitress + wrk req/s for the bare
route and the Bearer route, on loopback, for a bounded run.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.dpop import build_proof
from pyramid_attesto.core.encoding import b64url_decode, b64url_encode
from pyramid_attesto.core.keys import StaticKeystore, private_signer
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter

from ._harness import Row, alternating, print_rows, wrk

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pyramid's import-time pkg_resources/cgi deprecations
    from pyramid.config import Configurator
    from pyramid.security import Allowed

_ALLOW = Allowed("allowed")

NOW = 1_800_000_000
ISSUER = "https://as.example"
RESOURCE = "https://api.example/api"
URL = "https://api.example/api/reports"
NUMBER = 2000
ROUNDS = 7


def _view(request: Any) -> dict[str, str]:
    return {"ok": "yes"}


class _AllowAll:
    """The cheapest security policy: what Pyramid's permission machinery costs by itself."""

    def identity(self, request: Any) -> None:
        return None

    def authenticated_userid(self, request: Any) -> None:
        return None

    def permits(self, request: Any, context: Any, permission: str) -> Any:
        return _ALLOW

    def remember(self, request: Any, userid: Any, **kw: Any) -> list[Any]:
        return []

    def forget(self, request: Any, **kw: Any) -> list[Any]:
        return []


def _bare_app(*, permission: bool = False, view: Callable[[Any], Any] = _view) -> Any:
    with Configurator() as config:
        config.add_route("reports", "/api/reports")
        if permission:
            config.set_security_policy(_AllowAll())
            config.add_view(view, route_name="reports", renderer="json", permission="read")
        else:
            config.add_view(view, route_name="reports", renderer="json")
        return config.make_wsgi_app()


def _floor_view(token_key: ECKey, proof_key: ECKey | None) -> Callable[[Any], Any]:
    """The floor's view: joserfc verifies the request's access token (and its DPoP proof,
    with the proof's key already imported) and the JSON payloads are parsed; nothing else."""
    registry = jws.JWSRegistry(algorithms=["ES256"], strict_check_header=False)
    registry.max_header_length = 8192

    def view(request: Any) -> dict[str, str]:
        token = request.headers["Authorization"].split(" ", 1)[1]
        json.loads(jws.deserialize_compact(token, token_key, registry=registry).payload)
        if proof_key is not None:
            proof = jws.deserialize_compact(request.headers["DPoP"], proof_key, registry=registry)
            json.loads(proof.payload)
        return _view(request)

    return view


def _protected_app(keystore: StaticKeystore, clock: FrozenClock, **settings: str) -> Any:
    base = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.keystore": "shared",
        "attesto.scopes_supported": "read:reports",
        **settings,
    }
    with Configurator(settings=base) as config:
        config.include("pyramid_attesto.resource")
        config.set_attesto_keystore(keystore)
        config.set_attesto_clock(clock)
        config.add_route("reports", "/api/reports")
        config.add_view(_view, route_name="reports", renderer="json", permission="read:reports")
        return config.make_wsgi_app()


def _environ(headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/reports",
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "api.example",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "https",
        "wsgi.version": (1, 0),
        "wsgi.input": None,
        "wsgi.errors": None,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _call(app: Any, headers: dict[str, str]) -> Callable[[], None]:
    """One WSGI request; the body is consumed, the status must be 200."""
    status: list[str] = []

    def start_response(s: str, h: Any, exc_info: Any = None) -> None:
        status.append(s)

    def call() -> None:
        status.clear()
        body = app(_environ(headers), start_response)
        b"".join(body)
        if status[0] != "200 OK":
            raise AssertionError(
                f"{status[0]}: {b''.join(app(_environ(headers), start_response))!r}"
            )

    return call


def _calls(app: Any, headers: Iterator[dict[str, str]]) -> Callable[[], None]:
    """Like :func:`_call`, with new headers (a fresh DPoP proof) on every request."""
    status: list[str] = []

    def start_response(s: str, h: Any, exc_info: Any = None) -> None:
        status.append(s)

    def call() -> None:
        status.clear()
        b"".join(app(_environ(next(headers)), start_response))
        if status[0] != "200 OK":
            raise AssertionError(status[0])

    return call


def _raw_verify(public: ec.EllipticCurvePublicKey, token: str) -> Callable[[], None]:
    head, payload, sig = token.split(".")
    signing_input = f"{head}.{payload}".encode("ascii")
    raw = b64url_decode(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    return lambda: public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))


def _joserfc_verify(public: ECKey, token: str) -> Callable[[], object]:
    registry = jws.JWSRegistry(algorithms=["ES256"], strict_check_header=False)
    registry.max_header_length = 8192
    return lambda: jws.deserialize_compact(token, public, registry=registry)


def _proofs(key: ECKey, token: str, count: int) -> Iterator[dict[str, str]]:
    headers = [
        {
            "Authorization": f"DPoP {token}",
            "DPoP": build_proof(key, "GET", URL, access_token=token, iat=NOW),
        }
        for _ in range(count)
    ]
    return iter(headers)


def _sql_floor(url: str) -> tuple[Callable[[], None], Any]:
    """The replay claim's own statement (``INSERT ... ON CONFLICT DO NOTHING RETURNING``),
    prebuilt, in its own transaction on the same engine: the SQL floor of DESIGN.md D22."""
    from sqlalchemy.dialects import postgresql, sqlite

    from pyramid_attesto.storage.engine import make_engine
    from pyramid_attesto.storage.tables import metadata, replays

    engine = make_engine(url)
    metadata.create_all(engine)
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(replays).on_conflict_do_nothing().returning(replays.c.key)

    def claim() -> None:
        key = b64url_encode(secrets.token_bytes(32))
        with engine.begin() as connection:
            assert connection.execute(statement, {"key": key, "expires_at": NOW + 121}).first()

    return claim, engine


def _rows() -> list[Row]:
    signer_key = ECKey.generate_key("P-256")
    keystore = StaticKeystore([private_signer(signer_key.as_dict(private=True))])
    clock = FrozenClock(NOW)
    minter = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock)
    dpop_key = ECKey.generate_key("P-256")

    def mint(**kw: Any) -> str:
        claims = AccessTokenClaims(
            subject="user-1", client_id="c", audience=RESOURCE, scopes=("read:reports",), **kw
        )
        return minter.mint(claims, lifetime=3600).token

    bearer = mint()
    bound = mint(cnf={"jkt": dpop_key.thumbprint()})
    public = signer_key.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public_jwk = ECKey.import_key(signer_key.as_dict(private=False))
    sample_proof = build_proof(dpop_key, "GET", URL, access_token=bound, iat=NOW)
    proof_public = dpop_key.public_key
    assert isinstance(proof_public, ec.EllipticCurvePublicKey)
    proof_jwk = ECKey.import_key(dpop_key.as_dict(private=False))

    proofs_needed = (NUMBER + 200) * ROUNDS + 100
    memory_app = _protected_app(keystore, clock)
    (
        bare,
        secured,
        raw_at,
        raw_proof,
        jose_at,
        jose_proof,
        bearer_floor,
        dpop_floor,
        bearer_us,
        dpop_us,
    ) = alternating(
        [
            _call(_bare_app(), {}),
            _call(_bare_app(permission=True), {}),
            _raw_verify(public, bearer),
            _raw_verify(proof_public, sample_proof),
            _joserfc_verify(public_jwk, bearer),
            _joserfc_verify(proof_jwk, sample_proof),
            _call(
                _bare_app(view=_floor_view(public_jwk, None)), {"Authorization": f"Bearer {bearer}"}
            ),
            _calls(
                _bare_app(view=_floor_view(public_jwk, proof_jwk)),
                _proofs(dpop_key, bound, proofs_needed),
            ),
            _call(memory_app, {"Authorization": f"Bearer {bearer}"}),
            _calls(memory_app, _proofs(dpop_key, bound, proofs_needed)),
        ],
        number=NUMBER,
        rounds=ROUNDS,
    )
    rows = [
        Row("part: bare Pyramid route, WSGI", bare),
        Row("  same, permission + an allow-all policy (info)", secured, bare),
        Row("part: ES256 verify, raw cryptography", raw_at),
        Row("part: ES256 verify, joserfc (D22)", jose_at, raw_at),
        Row("floor: bare route + joserfc verify, one request", bearer_floor),
        Row("floor: bare route + 2 joserfc verifies, one request", dpop_floor),
        Row("Bearer route vs bare + raw verify summed (info)", bearer_us, bare + raw_at),
        Row("Bearer route vs bare + joserfc summed (info)", bearer_us, bare + jose_at),
        Row("Bearer ES256 route", bearer_us, bearer_floor, 1.3),
        Row("DPoP route vs bare + 2 raw summed (info)", dpop_us, bare + raw_at + raw_proof),
        Row("DPoP route vs bare + 2 joserfc summed (info)", dpop_us, bare + jose_at + jose_proof),
        Row("DPoP route (memory replay)", dpop_us, dpop_floor, 1.3),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("SQLite", f"sqlite:///{Path(tmp) / 'replay.db'}")]
        if os.environ.get("ATTESTO_TEST_POSTGRESQL_URL"):
            urls.append(("PostgreSQL", os.environ["ATTESTO_TEST_POSTGRESQL_URL"]))
        for name, url in urls:
            floor_claim, engine = _sql_floor(url)
            number, rounds = 300, 5
            app = _protected_app(keystore, clock, **{"attesto.replay_store": url})
            insert_us, sql_us = alternating(
                [
                    floor_claim,
                    _calls(app, _proofs(dpop_key, bound, (number + 200) * rounds + 100)),
                ],
                number=number,
                rounds=rounds,
            )
            rows.append(Row(f"{name} replay INSERT, own transaction (floor)", insert_us))
            rows.append(
                Row(
                    f"DPoP route ({name} replay) vs floor + INSERT (info)",
                    sql_us,
                    dpop_floor + insert_us,
                )
            )
            engine.dispose()
            app.registry["attesto.resource_engine"].dispose()
    return rows


def _wrk() -> None:
    """waitress + wrk on loopback (bounded): the bare route and the Bearer route."""
    if os.environ.get("ATTESTO_BENCH_WRK") != "1":
        return
    signer_key = ECKey.generate_key("P-256")
    keystore = StaticKeystore([private_signer(signer_key.as_dict(private=True))])
    clock = FrozenClock(NOW)
    claims = AccessTokenClaims(
        subject="u", client_id="c", audience=RESOURCE, scopes=("read:reports",)
    )
    token = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock).mint(claims, lifetime=3600)
    bare = wrk(_bare_app(), "/api/reports")
    bearer = wrk(
        _protected_app(keystore, clock),
        "/api/reports",
        headers={"Authorization": f"Bearer {token.token}"},
    )
    print("\n## waitress (4 threads) + wrk -t2 -c20 -d5s, loopback\n")
    print(f"| bare route          | {bare} |")
    print(f"| Bearer ES256 route  | {bearer} |")


def main() -> None:
    rows = _rows()
    print_rows("Resource server: protected route through the WSGI app", rows)
    _wrk()


if __name__ == "__main__":
    main()
