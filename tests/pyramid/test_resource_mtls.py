"""Certificate-bound access tokens at the resource server: RFC 8705 §3, RFC 9440, D14."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from resource_support import (
    DPoPKey,
    Issuer,
    assert_refused,
    certificate,
    make_app,
    x5t_s256,
)
from webtest import TestApp

URL = "https://api.example/api/reports"


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def cert() -> tuple[bytes, str]:
    return certificate()


@pytest.fixture
def app(tmp_path: Path, issuer: Issuer) -> TestApp:
    return make_app(tmp_path, issuer, {"attesto.trusted_proxies": "10.0.0.1"})


def client_cert_header(der: bytes) -> str:
    """RFC 9440 §2.2: the DER certificate as a Structured Field byte sequence."""
    return ":" + base64.b64encode(der).decode() + ":"


def bound(issuer: Issuer, der: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(cnf={'x5t#S256': x5t_s256(der)})}"}


def refused(app: TestApp, headers: dict[str, str], environ: dict[str, Any]) -> dict[str, str]:
    response = app.get("/api/reports", headers=headers, extra_environ=environ, status=401)
    return assert_refused(response, 401, "invalid_token", scope="read:reports")


def test_a_certificate_from_the_tls_terminating_server_matches_rfc8705_3(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str]
) -> None:
    der, pem = cert
    response = app.get(
        "/api/reports", headers=bound(issuer, der), extra_environ={"SSL_CLIENT_CERT": pem}
    )
    assert response.json["token_type"] == "Bearer"  # RFC 8705 §3: mTLS keeps the Bearer scheme


def test_a_certificate_forwarded_by_a_trusted_proxy_matches_rfc9440_2(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str]
) -> None:
    der, _ = cert
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_CLIENT_CERT": client_cert_header(der)}
    app.get("/api/reports", headers=bound(issuer, der), extra_environ=environ, status=200)


def test_a_certificate_header_from_an_untrusted_peer_is_ignored_rfc9440_4(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str]
) -> None:
    der, _ = cert
    environ = {"REMOTE_ADDR": "192.0.2.7", "HTTP_CLIENT_CERT": client_cert_header(der)}
    found = refused(app, bound(issuer, der), environ)
    assert "certificate" in found["error_description"]


def test_no_certificate_for_a_bound_token_is_invalid_token_rfc8705_3(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str]
) -> None:
    refused(app, bound(issuer, cert[0]), {})


def test_another_certificate_is_invalid_token_rfc8705_3(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str]
) -> None:
    _, other_pem = certificate("someone-else")
    refused(app, bound(issuer, cert[0]), {"SSL_CLIENT_CERT": other_pem})
    other_der, _ = certificate("third")
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_CLIENT_CERT": client_cert_header(other_der)}
    refused(app, bound(issuer, cert[0]), environ)


@pytest.mark.parametrize(
    "value", [":not base64!:", "no-colons", ":" + base64.b64encode(b"not a cert").decode() + ":"]
)
def test_a_malformed_certificate_header_is_no_certificate_rfc9440_2(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str], value: str
) -> None:
    refused(app, bound(issuer, cert[0]), {"REMOTE_ADDR": "10.0.0.1", "HTTP_CLIENT_CERT": value})


def test_a_certificate_bound_token_with_the_dpop_scheme_is_refused_rfc8705_3_rfc9449_7_1(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str]
) -> None:
    der, pem = cert
    token = issuer.token(cnf={"x5t#S256": x5t_s256(der)})
    proof = DPoPKey().proof("GET", URL, token=token)
    response = app.get(
        "/api/reports",
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
        extra_environ={"SSL_CLIENT_CERT": pem},
        status=401,
    )
    assert_refused(response, 401, "invalid_token", scheme="DPoP")


@pytest.mark.parametrize(
    "cnf",
    [
        {"jkt": "A" * 43, "x5t#S256": "A" * 43},  # two confirmation methods at once
        {"jwk": {"kty": "EC"}},  # RFC 7800 methods we do not enforce are refused, not ignored
        {"x5t#S256": "too-short"},
        {"x5t#S256": 42},
        {},
    ],
)
def test_an_unsupported_confirmation_is_invalid_token_rfc7800_3_1(
    app: TestApp, issuer: Issuer, cert: tuple[bytes, str], cnf: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {issuer.token(cnf=cnf)}"}
    refused(app, headers, {"SSL_CLIENT_CERT": cert[1]})


def test_metadata_advertises_certificate_bound_tokens_with_mtls_on_rfc9728_2(
    tmp_path: Path, issuer: Issuer
) -> None:
    path = "/.well-known/oauth-protected-resource/api"
    plain = make_app(tmp_path, issuer).get(path).json
    assert "tls_client_certificate_bound_access_tokens" not in plain  # omitted: false
    mtls = make_app(tmp_path, issuer, {"attesto.mtls.enabled": "true"}).get(path).json
    assert mtls["tls_client_certificate_bound_access_tokens"] is True
