"""Shared pieces of the authorization-server end-to-end tests: one keystore for the whole
run (RSA key generation is slow) and an app factory."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote_plus, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from pyramid.config import Configurator
from pyramid.response import Response
from webtest import TestApp

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.host import Event, Principal
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.secret import constant_time_equals, hash_secret
from pyramid_attesto.core.stores import Stores
from pyramid_attesto.core.tokens import AccessToken, AccessTokenVerifier
from pyramid_attesto.runtime import get_attesto
from pyramid_attesto.server import get_server

ISSUER = "https://id.example"
KEYSTORE = StaticKeystore(
    [private_signer(generate_key("ES256")), private_signer(generate_key("RS256"))]
)
ES256_ONLY = StaticKeystore([private_signer(generate_key("ES256"))])


def make_app(
    settings: dict[str, Any],
    *,
    keystore: Any = KEYSTORE,
    directives: dict[str, Any] | None = None,
    **include: str,
) -> TestApp:
    with Configurator(settings={"attesto.keystore": "(directive)", **settings}) as config:
        config.include("pyramid_attesto", **include)
        config.set_attesto_keystore(keystore)
        for name, value in (directives or {}).items():
            getattr(config, name)(value)
    return TestApp(config.make_wsgi_app())


# -- a small host policy -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


SECRETS = {"svc": "svc-secret-0123456789", "svc-post": "post-secret-0123456789"}
SECRETS["web"] = "web-secret-0123456789"
SECRETS["dpop-svc"] = "dpop-secret-0123456789"
SECRETS["rs"] = "rs-secret-0123456789"

CLIENTS = {
    "svc": Client(client_id="svc", grant_types=("client_credentials",), scope="read write"),
    "svc-post": Client(
        client_id="svc-post",
        token_endpoint_auth_method="client_secret_post",
        grant_types=("client_credentials",),
        scope="read",
    ),
    "dpop-svc": Client(
        client_id="dpop-svc",
        grant_types=("client_credentials",),
        scope="read",
        dpop_bound_access_tokens=True,
    ),
    "web": Client(
        client_id="web",
        redirect_uris=("https://app.example/cb",),
        grant_types=("authorization_code", "refresh_token"),
        scope="openid profile email read write offline_access",
    ),
    "pub": Client(
        client_id="pub",
        token_endpoint_auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/cb",),
        grant_types=("authorization_code", "refresh_token"),
        scope="read write",
    ),
    "rs": Client(client_id="rs", grant_types=("client_credentials",), scope="read"),
    "cc-pub": Client(
        client_id="cc-pub",
        token_endpoint_auth_method="none",
        grant_types=("client_credentials",),
        scope="read",
    ),
}
HASHES = {cid: hash_secret(secret) for cid, secret in SECRETS.items()}


def _jwt_client_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


JWT_CLIENT_KEY = _jwt_client_key()


def _public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def ec_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The bare public JWK of a P-256 key (no kid, alg or use)."""
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def self_signed_certificate(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fresh P-256 key and a self-signed certificate for ``cn``, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


CLIENTS["jwt-svc"] = Client(
    client_id="jwt-svc",
    token_endpoint_auth_method="private_key_jwt",
    grant_types=("client_credentials",),
    scope="read",
    jwks={"keys": [_public_jwk(JWT_CLIENT_KEY, "k1")]},
)


def client_assertion(
    client_id: str = "jwt-svc",
    *,
    aud: str = ISSUER,
    lifetime: int = 60,
    jti: str | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> str:
    """An RFC 7523 client assertion signed with ``cryptography`` alone (ES256)."""
    now = int(time.time())
    header = {"alg": "ES256", "kid": "k1", "typ": "JWT"}
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti or secrets.token_urlsafe(16),
    }
    signing_input = (
        _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    ).encode()
    der = (key or JWT_CLIENT_KEY).sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input.decode() + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class HostClients:
    """Clients with SHA-256 hashed secrets (pyramid_attesto.core.clients.ClientStore)."""

    def load_client(self, client_id: str) -> Client | None:
        return CLIENTS.get(client_id)

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        expected = HASHES.get(client.client_id)
        return expected is not None and constant_time_equals(hash_secret(secret), expected)

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return None


class HostPrincipals:
    disabled: ClassVar[set[str]] = set()

    def load_principal(self, subject: str) -> Principal | None:
        if subject in self.disabled:
            return None
        return Principal(subject)


class Consent:
    """A consent policy driven by test headers: ``X-Test-User`` is the logged-in user (else a
    login page); ``X-Test-Consent`` is ``deny``, ``page`` or anything (granted)."""

    def authenticate_resource_owner(self, request: Any, authorization: Any) -> object:
        user = request.headers.get("X-Test-User")
        if user == "none":
            return None
        if user:
            return user
        response = Response("login page")
        response.headers["X-Resume"] = authorization.resume_url
        return response

    def consent(self, request: Any, authorization: Any, subject: str) -> object:
        answer = request.headers.get("X-Test-Consent")
        if answer == "deny":
            return False
        if answer == "page":
            return Response("consent page")
        return True


class Claims:
    """Claims by scope (OIDC Core §5.4)."""

    def userinfo_claims(self, subject: str, scopes: Any, requested: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": "forged"}
        if "profile" in scopes:
            claims["name"] = subject.title()
        if "email" in scopes:
            claims["email"] = f"{subject}@example.com"
        return claims

    def id_token_claims(
        self, client: Any, subject: str, scopes: Any, requested: Any
    ) -> dict[str, Any]:
        return {"name": subject.title(), "iss": "https://forged.example"}


HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "id.example"}
SCOPES = "openid profile email read write admin offline_access"


def as_app(settings: dict[str, Any] | None = None, **directives: Any) -> TestApp:
    """An app with the test host's clients and principals, reached over https."""
    app = make_app(
        {"attesto.issuer": ISSUER, "attesto.scopes_supported": SCOPES, **(settings or {})},
        directives={
            "set_attesto_client_store": HostClients(),
            "set_attesto_principal_store": HostPrincipals(),
            **directives,
        },
    )
    app.extra_environ = dict(HTTPS)
    return app


def basic(client_id: str, secret: str | None = None) -> dict[str, str]:
    """An ``Authorization: Basic`` header (RFC 6749 §2.3.1 form-encoding first)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret or SECRETS[client_id])}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def verify_access_token(app: TestApp, token: str, audience: str = ISSUER) -> AccessToken:
    runtime = get_attesto(app.app.registry)
    return AccessTokenVerifier(
        runtime.keystore, issuer=ISSUER, audience=audience, clock=runtime.clock
    ).verify(token)


def events(app: TestApp) -> list[Event]:
    seen: list[Event] = []
    app.app.registry.registerHandler(seen.append, (Event,))
    return seen


def stores(app: TestApp) -> Stores:
    from pyramid.request import Request

    request = Request.blank("/")
    request.registry = app.app.registry
    return get_server(app.app.registry).stores(request)


# -- DPoP proofs made with `cryptography` only (independent of core.dpop) ------------------


class DPoPKey:
    """A client's P-256 DPoP key and its RFC 7638 thumbprint."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        canonical = json.dumps(
            {k: self.jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
        )
        self.jkt = _b64(hashlib.sha256(canonical.encode()).digest())

    def proof(
        self,
        htu: str = ISSUER + "/oauth/token",
        htm: str = "POST",
        *,
        nonce: str | None = None,
        iat: int | None = None,
        jti: str | None = None,
        ath: str | None = None,
    ) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time()) if iat is None else iat,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if ath is not None:
            claims["ath"] = ath
        signing_input = (
            _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        ).encode()
        der = self.private.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input.decode() + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def pkce_authorize(
    app: TestApp, client_id: str, redirect_uri: str, verifier: str, status: int = 302
) -> Any:
    """An authorization request with an S256 challenge of ``verifier``, as the test user
    (``Consent`` approves every request of ``X-Test-User``)."""
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "s1",
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
    }
    return app.get("/oauth/authorize", query, headers={"X-Test-User": "alice"}, status=status)


def code_of(response: Any) -> str:
    """The code of a successful authorization redirect (with ``iss``, RFC 9207)."""
    params = parse_qs(urlsplit(response.headers["Location"]).query)
    assert params["iss"] == [ISSUER]
    code: str = params["code"][0]
    return code
