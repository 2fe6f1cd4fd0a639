"""Test support for the resource-server tests: JWS, JWKs, thumbprints, DPoP proofs and
certificates built with ``cryptography`` and the standard library only — never with this
project's builders — so a bug shared by builder and verifier cannot hide; and a small app
factory.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # Import-time deprecations of the pinned stack (WebOb 1.8 imports the stdlib cgi module;
    # pkg_resources declares the paste namespace): silenced here, once, for the import only.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyramid.config  # noqa: F401
    import webob  # noqa: F401
    import webtest  # noqa: F401

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from pyramid.config import Configurator
from webtest import TestApp

from pyramid_attesto.core.clock import FrozenClock

NOW = 1_700_000_000
ISSUER = "https://as.example"
RESOURCE = "https://api.example/api"
URL_REPORTS = "https://api.example/api/reports"
METADATA_URL = "https://api.example/.well-known/oauth-protected-resource/api"
SCOPES = ("read:reports", "write:reports", "profile")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ec_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64(numbers.x.to_bytes(32, "big")),
        "y": b64(numbers.y.to_bytes(32, "big")),
    }


def rsa_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "n": b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
    }


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 §3: SHA-256 of the required members, lexicographic, no whitespace."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    return b64(hashlib.sha256(compact_json({k: jwk[k] for k in required})).digest())


def sign(key: Any, header: Mapping[str, Any], claims: Mapping[str, Any] | bytes) -> str:
    """A compact JWS (RFC 7515 §7.1) signed with ES256 or RS256 by ``cryptography``."""
    payload = claims if isinstance(claims, bytes) else compact_json(claims)
    signing_input = f"{b64(compact_json(header))}.{b64(payload)}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64(signature)}"


class Issuer:
    """An authorization server's signing key, minting RFC 9068 access tokens by hand."""

    def __init__(self, kid: str = "as-key-1", key: ec.EllipticCurvePrivateKey | None = None):
        self.key = key or ec_key()
        self.kid = kid

    @property
    def public_jwk(self) -> dict[str, str]:
        return {**ec_jwk(self.key), "kid": self.kid, "alg": "ES256", "use": "sig"}

    def token(
        self,
        *,
        header: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "user-1",
            "aud": RESOURCE,
            "exp": NOW + 600,
            "iat": NOW - 10,
            "jti": secrets.token_urlsafe(12),
            "client_id": "client-1",
            "scope": "read:reports profile",
            "principal_kind": "user",
        }
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        head: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": self.kid}
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not None}  # None drops a member
        return sign(self.key, head, body)


def ath(token: str) -> str:
    return b64(hashlib.sha256(token.encode("ascii")).digest())


class DPoPKey:
    """A client's DPoP key and hand-made proofs (RFC 9449 §4.2)."""

    def __init__(self) -> None:
        self.key = ec_key()
        self.jwk = ec_jwk(self.key)
        self.jkt = thumbprint(self.jwk)

    def proof(
        self,
        htm: str,
        htu: str,
        *,
        token: str | None = None,
        header: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        key: Any = None,
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": htm,
            "htu": htu,
            "iat": NOW,
        }
        if token is not None:
            body["ath"] = ath(token)
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        head.update(header or {})
        return sign(key or self.key, head, body)


def certificate(common_name: str = "client-1") -> tuple[bytes, str]:
    """A self-signed client certificate: (DER, PEM)."""
    key = ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.DER),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
    )


def x5t_s256(der: bytes) -> str:
    return b64(hashlib.sha256(der).digest())


def write_jwks(path: Path, *issuers: Issuer) -> Path:
    path.write_text(json.dumps({"keys": [i.public_jwk for i in issuers]}))
    return path


def api_view(request: Any) -> dict[str, Any]:
    identity = request.identity
    return {
        "sub": identity.subject,
        "client_id": identity.client_id,
        "kind": identity.kind,
        "scopes": list(identity.scopes),
        "token_type": identity.token_type,
    }


def make_app(
    tmp_path: Path,
    issuer: Issuer,
    settings: Mapping[str, Any] | None = None,
    *,
    clock: FrozenClock | None = None,
    configure: Any = None,
) -> TestApp:
    """An API with ``/api/reports`` (permission ``read:reports``), ``/api/admin``
    (``attesto_scopes`` read+write), ``/api/stepup`` (acr + max_age) and ``/api/public``."""
    base: dict[str, Any] = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.keystore": str(write_jwks(tmp_path / "as-public.jwks", issuer)),
        "attesto.scopes_supported": " ".join(SCOPES),
    }
    base.update(settings or {})
    with Configurator(settings=base) as config:
        config.include("pyramid_attesto.resource")
        config.set_attesto_clock(clock or FrozenClock(NOW))
        config.add_route("reports", "/api/reports")
        config.add_view(api_view, route_name="reports", renderer="json", permission="read:reports")
        config.add_route("admin", "/api/admin")
        config.add_view(
            api_view,
            route_name="admin",
            renderer="json",
            attesto_scopes=["read:reports", "write:reports"],
        )
        config.add_route("stepup", "/api/stepup")
        config.add_view(
            api_view,
            route_name="stepup",
            renderer="json",
            attesto_scopes="read:reports",
            attesto_acr_values=["urn:mfa"],
            attesto_max_age=300,
        )
        config.add_route("public", "/api/public")
        config.add_view(
            lambda request: {"identity": request.identity is not None},
            route_name="public",
            renderer="json",
        )
        if configure is not None:
            configure(config)
        app = config.make_wsgi_app()
    return TestApp(app, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "api.example"})


def challenge_params(header: str) -> list[tuple[str, dict[str, str]]]:
    """Parse a ``WWW-Authenticate`` value into (scheme, params) pairs (RFC 9110 §11.6.1)."""
    result: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " ,":
            i += 1
        start = i
        while i < n and header[i] not in " ,":
            i += 1
        scheme = header[start:i]
        params: dict[str, str] = {}
        result.append((scheme, params))
        while True:
            j = i
            while j < n and header[j] in " ,":
                j += 1
            k = j
            while k < n and header[k] not in "= ,":
                k += 1
            if k >= n or header[k] != "=":
                i = j
                break
            name = header[j:k]
            k += 1
            assert header[k] == '"', header
            k += 1
            value = []
            while header[k] != '"':
                if header[k] == "\\":
                    k += 1
                value.append(header[k])
                k += 1
            params[name] = "".join(value)
            i = k + 1
        if not scheme:
            result.pop()
    return result


def assert_refused(
    response: Any,
    status: int,
    error: str | None,
    *,
    scheme: str = "Bearer",
    **params: str,
) -> dict[str, str]:
    """Assert an RFC 6750 / RFC 9449 refusal: status, the challenge of ``scheme`` with
    ``error`` (none for a request without credentials) and ``params``, the JSON body and
    ``Cache-Control: no-store``. Returns the challenge's parameters."""
    assert response.status_int == status, response.body
    challenges = dict(challenge_params(response.headers["WWW-Authenticate"]))
    assert scheme in challenges, response.headers["WWW-Authenticate"]
    found = challenges[scheme]
    assert found.get("error") == error, found
    for name, value in params.items():
        assert found.get(name) == value, (name, found)
    assert found.get("resource_metadata") == METADATA_URL
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"
    if error is None:
        assert response.json == {}
    else:
        assert response.json["error"] == error
        assert response.json.get("error_description") == found.get("error_description")
    return found


class LoopbackServer:
    """A WSGI app served by waitress on 127.0.0.1 (an ephemeral port), stopped cleanly.

    waitress's own ``run()`` has no stop: this polls its loop until told to stop, then closes
    every socket from the serving thread (closing them from another thread races the loop).
    """

    def __init__(self, app: Any) -> None:
        import threading

        from waitress.server import create_server

        self.server = create_server(app, host="127.0.0.1", port=0, threads=1)
        self.base = f"http://127.0.0.1:{self.server.effective_port}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        server = self.server
        while not self._stopping.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)
        for channel in list(server._map.values()):
            channel.close()
        server.task_dispatcher.shutdown()

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
