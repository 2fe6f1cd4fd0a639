"""A resource server apart from its authorization server, trusting it only through its
``jwks_uri`` (RFC 8414 §2, RFC 7517 §5; DESIGN.md D4, D18): caching, key rotation, bounds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from resource_support import (
    ISSUER,
    NOW,
    RESOURCE,
    Issuer,
    LoopbackServer,
    api_view,
    assert_refused,
    b64,
    ec_key,
)
from webtest import TestApp

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import ConfigurationError, TemporarilyUnavailable
from pyramid_attesto.core.keys import KeyAlgorithmMismatch
from pyramid_attesto.jwks_client import FetchError, FetchResponse, RemoteJWKS, urllib_fetcher

JWKS_URI = "https://as.example/jwks"


class FakeAS:
    """The authorization server's JWKS endpoint, in memory."""

    def __init__(self, *issuers: Issuer, max_age: int | None = 300) -> None:
        self.issuers = list(issuers)
        self.fetches = 0
        self.fail = False
        self.max_age = max_age

    def document(self) -> bytes:
        return json.dumps({"keys": [i.public_jwk for i in self.issuers]}).encode()

    def __call__(self, url: str, timeout: float, max_bytes: int) -> FetchResponse:
        assert url == JWKS_URI
        assert 0 < timeout <= 10
        self.fetches += 1
        if self.fail:
            raise FetchError("connection refused")
        headers = {"content-type": "application/json"}
        if self.max_age is not None:
            headers["cache-control"] = f"public, max-age={self.max_age}"
        return FetchResponse(200, self.document(), headers)


def rs_app(fetcher: Any, clock: FrozenClock, **settings: str) -> TestApp:
    """A separate resource-server app: no keystore, only the AS's jwks_uri."""
    from pyramid.config import Configurator

    base = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.jwks_uri": JWKS_URI,
        "attesto.scopes_supported": "read:reports",
        **settings,
    }
    with Configurator(settings=base) as config:
        config.include("pyramid_attesto.resource")
        config.set_attesto_clock(clock)
        config.set_attesto_jwks_fetcher(fetcher)
        config.add_route("reports", "/api/reports")
        config.add_view(api_view, route_name="reports", renderer="json", permission="read:reports")
        app = config.make_wsgi_app()
    return TestApp(app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_keys_are_fetched_once_and_cached_rfc7517_5() -> None:
    one = Issuer("k1")
    server = FakeAS(one)
    app = rs_app(server, FrozenClock(NOW))
    assert server.fetches == 0  # lazily, at the first token
    for _ in range(3):
        app.get("/api/reports", headers=bearer(one.token()), status=200)
    assert server.fetches == 1


def test_a_key_rotation_is_picked_up_through_an_unknown_kid() -> None:
    old, new = Issuer("k1"), Issuer("k2")
    server = FakeAS(old)
    clock = FrozenClock(NOW)
    app = rs_app(server, clock)
    app.get("/api/reports", headers=bearer(old.token()), status=200)
    # The AS publishes its next key and starts signing with it.
    server.issuers = [old, new]
    clock.advance(61)
    app.get("/api/reports", headers=bearer(new.token()), status=200)
    assert server.fetches == 2
    app.get("/api/reports", headers=bearer(old.token()), status=200)  # both are published
    # The AS retires the old key: once the cached set expires, its tokens stop verifying.
    server.issuers = [new]
    clock.advance(300)
    response = app.get("/api/reports", headers=bearer(old.token()), status=401)
    assert_refused(response, 401, "invalid_token")
    app.get("/api/reports", headers=bearer(new.token()), status=200)


def test_unknown_kids_refresh_at_most_once_per_interval_d18() -> None:
    one = Issuer("k1")
    server = FakeAS(one)
    clock = FrozenClock(NOW)
    app = rs_app(server, clock)
    app.get("/api/reports", headers=bearer(one.token()), status=200)
    for n in range(5):  # a stream of forged kids is not an amplifier
        app.get("/api/reports", headers=bearer(Issuer(f"forged-{n}").token()), status=401)
    assert server.fetches == 1
    clock.advance(60)
    app.get("/api/reports", headers=bearer(Issuer("forged-x").token()), status=401)
    assert server.fetches == 2


def test_no_keys_at_all_is_503_not_invalid_token() -> None:
    server = FakeAS(Issuer("k1"))
    server.fail = True
    app = rs_app(server, FrozenClock(NOW))
    response = app.get("/api/reports", headers=bearer(Issuer("k1").token()), status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert "WWW-Authenticate" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_a_failed_refresh_keeps_the_known_keys_and_backs_off() -> None:
    one = Issuer("k1")
    server = FakeAS(one, max_age=60)
    clock = FrozenClock(NOW)
    app = rs_app(server, clock)
    app.get("/api/reports", headers=bearer(one.token()), status=200)
    server.fail = True
    clock.advance(61)  # stale: a refresh is attempted and fails
    app.get("/api/reports", headers=bearer(one.token()), status=200)
    assert server.fetches == 2
    clock.advance(1)  # inside the backoff: no new attempt
    app.get("/api/reports", headers=bearer(one.token()), status=200)
    assert server.fetches == 2
    server.fail = False
    clock.advance(10)
    app.get("/api/reports", headers=bearer(one.token()), status=200)
    assert server.fetches == 3


# -- the document's bounds -----------------------------------------------------------------


def remote(document: Any, **kwargs: Any) -> RemoteJWKS:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()

    def fetch(url: str, timeout: float, max_bytes: int) -> FetchResponse:
        return FetchResponse(200, body, {})

    return RemoteJWKS(JWKS_URI, clock=FrozenClock(NOW), fetcher=fetch, **kwargs)


def test_private_members_and_non_signing_keys_are_skipped_rfc7517_5() -> None:
    good = Issuer("good")
    private = {
        **Issuer("private").public_jwk,
        "d": b64(ec_key().private_numbers().private_value.to_bytes(32, "big")),
    }
    encryption = {**Issuer("enc").public_jwk, "use": "enc"}
    symmetric = {"kty": "oct", "kid": "oct", "k": b64(b"secret")}
    wrong_alg = {**Issuer("alg").public_jwk, "alg": "RS256"}
    jwks = remote({"keys": [good.public_jwk, private, encryption, symmetric, wrong_alg, "x"]})
    assert jwks.verification_key("good", "ES256") is not None
    for kid in ("private", "enc", "oct", "alg"):
        assert jwks.verification_key(kid, "ES256") is None
    assert [k["kid"] for k in jwks.jwks()["keys"]] == ["good"]
    with pytest.raises(KeyAlgorithmMismatch):
        jwks.verification_key("good", "RS256")


def test_a_duplicated_kid_is_not_trusted() -> None:
    jwks = remote({"keys": [Issuer("k").public_jwk, Issuer("k").public_jwk]})
    assert jwks.verification_key("k", "ES256") is None


def test_an_rsa_key_without_alg_verifies_rs256_and_ps256_only() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from resource_support import rsa_jwk

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = remote({"keys": [{**rsa_jwk(key), "kid": "r"}]})
    assert jwks.verification_key("r", "RS256") is not None
    assert jwks.verification_key("r", "PS256") is not None
    with pytest.raises(KeyAlgorithmMismatch):
        jwks.verification_key("r", "ES256")


def test_a_small_rsa_key_is_skipped_rfc7518_3_3() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from resource_support import rsa_jwk

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    jwks = remote({"keys": [{**rsa_jwk(key), "kid": "small"}, Issuer("k").public_jwk]})
    assert jwks.verification_key("small", "RS256") is None


@pytest.mark.parametrize(
    "document", [b"not json", b"[]", b'{"keys": {}}', b"\xff\xfe", b'{"keys": 1}']
)
def test_a_malformed_document_is_a_failed_fetch(document: bytes) -> None:
    with pytest.raises(TemporarilyUnavailable):
        remote(document).verification_key("k", "ES256")


def test_the_number_of_keys_is_bounded() -> None:
    issuers = [Issuer(f"k{n}") for n in range(5)]
    jwks = remote({"keys": [i.public_jwk for i in issuers]}, max_keys=3)
    assert jwks.verification_key("k2", "ES256") is not None
    assert jwks.verification_key("k3", "ES256") is None


def test_a_remote_key_set_cannot_sign() -> None:
    jwks = remote({"keys": []})
    assert jwks.algorithms == frozenset()
    with pytest.raises(ConfigurationError):
        jwks.signer()


def test_bad_cache_bounds_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        remote({"keys": []}, min_ttl=600, default_ttl=60)


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [
        ("max-age=120", 120),
        ("public, max-age=5", 60),  # at least min_ttl
        ("max-age=9999999", 86400),  # at most max_ttl
        ("no-store", 60),
        ("", 300),
    ],
)
def test_the_cache_lifetime_follows_cache_control_rfc9111(cache_control: str, ttl: int) -> None:
    clock = FrozenClock(NOW)
    fetches: list[int] = []

    def fetch(url: str, timeout: float, max_bytes: int) -> FetchResponse:
        fetches.append(1)
        return FetchResponse(
            200,
            json.dumps({"keys": [Issuer("k").public_jwk]}).encode(),
            {"cache-control": cache_control},
        )

    jwks = RemoteJWKS(JWKS_URI, clock=clock, fetcher=fetch)
    jwks.verification_key("k", "ES256")
    clock.advance(ttl - 1)
    jwks.verification_key("k", "ES256")
    assert len(fetches) == 1
    clock.advance(1)
    jwks.verification_key("k", "ES256")
    assert len(fetches) == 2


# -- over the network: a loopback waitress server ------------------------------------------


class JWKSEndpoint:
    """A real HTTP JWKS endpoint (served on loopback), with a redirect and a huge body."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuers = [issuer]
        self.base = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/jwks":
            body = json.dumps({"keys": [i.public_jwk for i in self.issuers]}).encode()
            headers = [("Content-Type", "application/json"), ("Cache-Control", "max-age=600")]
            start_response("200 OK", headers)
            return [body]
        if path == "/redirect":
            start_response("302 Found", [("Location", self.base + "/jwks")])
            return [b""]
        if path == "/huge":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b" " * (300 * 1024)]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]


@pytest.fixture
def jwks_server() -> Iterator[JWKSEndpoint]:
    endpoint = JWKSEndpoint(Issuer("net-1"))
    with LoopbackServer(endpoint) as server:
        endpoint.base = server.base
        yield endpoint


def test_a_separate_app_trusts_the_as_through_a_real_jwks_uri(jwks_server: JWKSEndpoint) -> None:
    from pyramid.config import Configurator

    settings = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.jwks_uri": jwks_server.base + "/jwks",
        "attesto.require_https": "false",
    }
    clock = FrozenClock(NOW)
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto.resource")
        config.set_attesto_clock(clock)
        config.add_route("reports", "/api/reports")
        config.add_view(api_view, route_name="reports", renderer="json", permission="read:reports")
        app = TestApp(config.make_wsgi_app())
    issuer = jwks_server.issuers[0]
    app.get("/api/reports", headers=bearer(issuer.token(scope="read:reports")), status=200)
    # Rotation over the network: the AS adds a key, the RS finds it through the unknown kid.
    new = Issuer("net-2")
    jwks_server.issuers.append(new)
    clock.advance(60)
    app.get("/api/reports", headers=bearer(new.token(scope="read:reports")), status=200)


def test_the_fetcher_follows_no_redirect_d18(jwks_server: JWKSEndpoint) -> None:
    with pytest.raises(FetchError, match="redirect"):
        urllib_fetcher(jwks_server.base + "/redirect", 5, 1024)


def test_the_fetcher_caps_the_size_d18(jwks_server: JWKSEndpoint) -> None:
    with pytest.raises(FetchError, match="size"):
        urllib_fetcher(jwks_server.base + "/huge", 5, 256 * 1024)


def test_the_fetcher_reports_http_errors_and_unreachable_hosts(jwks_server: JWKSEndpoint) -> None:
    with pytest.raises(FetchError, match="404"):
        urllib_fetcher(jwks_server.base + "/missing", 5, 1024)
    with pytest.raises(FetchError):
        urllib_fetcher("http://127.0.0.1:1/jwks", 1, 1024)
    with pytest.raises(FetchError):
        urllib_fetcher("file:///etc/passwd", 1, 1024)


def test_the_setting_requires_https_for_jwks_uri(tmp_path: Path) -> None:
    from pyramid.config import Configurator

    settings = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.jwks_uri": "http://as.example/jwks",
    }
    with pytest.raises(Exception, match="jwks_uri"), Configurator(settings=settings) as config:
        config.include("pyramid_attesto.resource")
