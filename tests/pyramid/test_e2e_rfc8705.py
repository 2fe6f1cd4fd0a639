"""End to end: mutual-TLS client authentication and certificate-bound access tokens
(RFC 8705) at the token endpoint, with the certificate in ``SSL_CLIENT_CERT`` as a
TLS-terminating WSGI server sets it (DESIGN.md D14). Certificates made with ``cryptography``."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from asrv_support import (
    CLIENTS,
    as_app,
    basic,
    ec_jwk,
    self_signed_certificate,
    verify_access_token,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyramid.exceptions import ConfigurationExecutionError

from pyramid_attesto.core.clients import Client

TOKEN = "/oauth/token"
CC = {"grant_type": "client_credentials"}
MTLS = {
    "attesto.mtls.enabled": "true",
    "attesto.token_endpoint_auth_methods": (
        "client_secret_basic tls_client_auth self_signed_tls_client_auth"
    ),
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


SELF_KEY, SELF_CERT = self_signed_certificate("self-signed-client")
CA_KEY, CA_CERT = self_signed_certificate("mtls-client.example")
CLIENTS["mtls-self"] = Client(
    client_id="mtls-self",
    token_endpoint_auth_method="self_signed_tls_client_auth",
    grant_types=("client_credentials",),
    scope="read",
    jwks={"keys": [ec_jwk(SELF_KEY)]},
    tls_client_certificate_bound_access_tokens=True,
)
CLIENTS["mtls-pki"] = Client(
    client_id="mtls-pki",
    token_endpoint_auth_method="tls_client_auth",
    grant_types=("client_credentials",),
    scope="read",
    tls_client_auth_subject_dn="CN=mtls-client.example",
    tls_client_certificate_bound_access_tokens=True,
)


def _environ(cert: x509.Certificate, verified: bool = False) -> dict[str, Any]:
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    environ = {"wsgi.url_scheme": "https", "HTTP_HOST": "id.example", "SSL_CLIENT_CERT": pem}
    if verified:
        environ["SSL_CLIENT_VERIFY"] = "SUCCESS"
    return environ


def _x5t(cert: x509.Certificate) -> str:
    return _b64(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())


def test_self_signed_tls_client_auth_binds_the_token_rfc8705_2_2_and_3() -> None:
    app = as_app(MTLS)
    res = app.post(
        TOKEN, {**CC, "client_id": "mtls-self"}, extra_environ=_environ(SELF_CERT), status=200
    )
    assert res.json["token_type"] == "Bearer"  # RFC 8705 §3: the type stays Bearer
    token = verify_access_token(app, res.json["access_token"])
    assert token.cnf == {"x5t#S256": _x5t(SELF_CERT)}


def test_tls_client_auth_needs_a_validated_chain_rfc8705_2_1_d14() -> None:
    app = as_app(MTLS)
    form = {**CC, "client_id": "mtls-pki"}
    ok = app.post(TOKEN, form, extra_environ=_environ(CA_CERT, verified=True), status=200)
    assert verify_access_token(app, ok.json["access_token"]).cnf == {"x5t#S256": _x5t(CA_CERT)}
    res = app.post(TOKEN, form, extra_environ=_environ(CA_CERT), status=401)
    assert res.json["error"] == "invalid_client"


def test_wrong_certificate_is_invalid_client_rfc8705_2() -> None:
    app = as_app(MTLS)
    res = app.post(
        TOKEN, {**CC, "client_id": "mtls-self"}, extra_environ=_environ(CA_CERT), status=401
    )
    assert res.json["error"] == "invalid_client"
    res = app.post(TOKEN, {**CC, "client_id": "mtls-self"}, status=401)
    assert res.json["error"] == "invalid_client"


def test_client_certificate_header_from_an_untrusted_peer_is_ignored_d14() -> None:
    app = as_app(MTLS)
    der = SELF_CERT.public_bytes(serialization.Encoding.DER)
    header = ":" + base64.b64encode(der).decode() + ":"
    res = app.post(
        TOKEN,
        {**CC, "client_id": "mtls-self"},
        headers={"Client-Cert": header},
        extra_environ={"REMOTE_ADDR": "192.0.2.9"},
        status=401,
    )
    assert res.json["error"] == "invalid_client"


def test_mtls_is_advertised_rfc8705_3_3() -> None:
    doc = as_app(MTLS).get("/.well-known/oauth-authorization-server").json
    assert doc["tls_client_certificate_bound_access_tokens"] is True
    assert "tls_client_auth" in doc["token_endpoint_auth_methods_supported"]
    plain = as_app().get("/.well-known/oauth-authorization-server").json
    assert "tls_client_certificate_bound_access_tokens" not in plain


def test_mtls_methods_need_mtls_enabled_d24() -> None:
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.mtls\.enabled"):
        as_app({"attesto.token_endpoint_auth_methods": "tls_client_auth"})


def test_secret_client_registered_for_bound_tokens_needs_a_certificate_rfc8705_3() -> None:
    CLIENTS["svc-bound"] = Client(
        client_id="svc-bound",
        grant_types=("client_credentials",),
        scope="read",
        tls_client_certificate_bound_access_tokens=True,
    )
    app = as_app(MTLS)
    from asrv_support import HASHES, SECRETS

    SECRETS["svc-bound"] = SECRETS["svc"]
    HASHES["svc-bound"] = HASHES["svc"]
    res = app.post(TOKEN, CC, headers=basic("svc-bound"), status=400)
    assert res.json["error"] == "invalid_request"
    ok = app.post(TOKEN, CC, headers=basic("svc-bound"), extra_environ=_environ(SELF_CERT))
    assert verify_access_token(app, ok.json["access_token"]).cnf == {"x5t#S256": _x5t(SELF_CERT)}
