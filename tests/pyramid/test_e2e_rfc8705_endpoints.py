"""End to end: mutual-TLS client authentication (RFC 8705 §2) at the PAR, revocation and
introspection endpoints (the token endpoint is in ``test_e2e_rfc8705.py``), and the
``mtls_endpoint_aliases`` of the metadata (§5) at ``attesto.mtls.base_url``. Certificates
are made with ``cryptography`` and arrive in ``SSL_CLIENT_CERT`` (DESIGN.md D14)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from asrv_support import (
    CLIENTS,
    Claims,
    Consent,
    as_app,
    ec_jwk,
    self_signed_certificate,
    verify_access_token,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.core.clients import Client

TOKEN = "/oauth/token"
PAR = "/oauth/par"
REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
MTLS_BASE = "https://mtls.id.example"
MTLS = {
    "attesto.mtls.enabled": "true",
    "attesto.token_endpoint_auth_methods": (
        "client_secret_basic tls_client_auth self_signed_tls_client_auth none"
    ),
    "attesto.introspection_clients": "mtls-rs",
}
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(b"m" * 64).digest()).rstrip(b"=").decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


APP_KEY, APP_CERT = self_signed_certificate("mtls-web-app")
RS_KEY, RS_CERT = self_signed_certificate("rs.mtls.example")
STRANGER_KEY, STRANGER_CERT = self_signed_certificate("stranger")
CLIENTS["mtls-web"] = Client(
    client_id="mtls-web",
    token_endpoint_auth_method="self_signed_tls_client_auth",
    redirect_uris=("https://app.example/cb",),
    grant_types=("authorization_code", "client_credentials"),
    scope="read",
    jwks={"keys": [ec_jwk(APP_KEY)]},
    tls_client_certificate_bound_access_tokens=True,
)
CLIENTS["mtls-rs"] = Client(
    client_id="mtls-rs",
    token_endpoint_auth_method="tls_client_auth",
    grant_types=("client_credentials",),
    scope="read",
    tls_client_auth_subject_dn="CN=rs.mtls.example",
)


def _environ(cert: x509.Certificate | None, *, verified: bool = False, **extra: str) -> Any:
    environ: dict[str, Any] = {"wsgi.url_scheme": "https", "HTTP_HOST": "id.example", **extra}
    if cert is not None:
        environ["SSL_CLIENT_CERT"] = cert.public_bytes(serialization.Encoding.PEM).decode()
    if verified:
        environ["SSL_CLIENT_VERIFY"] = "SUCCESS"
    return environ


def _app(**settings: str) -> TestApp:
    return as_app(
        {**MTLS, **{f"attesto.{k.replace('__', '.')}": v for k, v in settings.items()}},
        set_attesto_consent_policy=Consent(),
        set_attesto_claims_provider=Claims(),
    )


@pytest.fixture(scope="module")
def app() -> TestApp:
    return _app(mtls__base_url=MTLS_BASE)


def _token(app: TestApp) -> str:
    form = {"grant_type": "client_credentials", "client_id": "mtls-web"}
    res = app.post(TOKEN, form, extra_environ=_environ(APP_CERT), status=200)
    return str(res.json["access_token"])


def _refused(res: Any, cert: x509.Certificate | None) -> None:
    assert res.status_int == 401
    assert res.headers["Cache-Control"] == "no-store"
    assert res.json == {
        "error": "invalid_client",
        "error_description": "a client certificate is required"
        if cert is None
        else "the client certificate does not match the client",
    }


# -- metadata (RFC 8705 §5) ---------------------------------------------------------------


def test_metadata_names_the_mtls_aliases_rfc8705_5(app: TestApp) -> None:
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["mtls_endpoint_aliases"] == {
        "token_endpoint": f"{MTLS_BASE}/oauth/token",
        "pushed_authorization_request_endpoint": f"{MTLS_BASE}/oauth/par",
        "revocation_endpoint": f"{MTLS_BASE}/oauth/revoke",
        "userinfo_endpoint": f"{MTLS_BASE}/oauth/userinfo",
        "introspection_endpoint": f"{MTLS_BASE}/oauth/introspect",
    }
    # The main endpoints stay where they were (RFC 8705 §5: the aliases are additional).
    assert doc["token_endpoint"] == "https://id.example/oauth/token"
    assert doc["tls_client_certificate_bound_access_tokens"] is True
    openid = app.get("/.well-known/openid-configuration").json
    assert openid["mtls_endpoint_aliases"] == doc["mtls_endpoint_aliases"]


def test_no_aliases_without_a_base_url_rfc8705_5() -> None:
    doc = _app().get("/.well-known/oauth-authorization-server").json
    assert "mtls_endpoint_aliases" not in doc


def test_the_alias_host_serves_the_same_endpoint_rfc8705_5(app: TestApp) -> None:
    form = {"grant_type": "client_credentials", "client_id": "mtls-web"}
    environ = _environ(APP_CERT, HTTP_HOST="mtls.id.example")
    res = app.post(TOKEN, form, extra_environ=environ, status=200)
    assert verify_access_token(app, res.json["access_token"]).cnf is not None


def test_a_dpop_proof_may_name_the_mtls_alias_rfc8705_5_rfc9449_4_3(app: TestApp) -> None:
    """A client that reaches the token endpoint through its mTLS alias puts that URL in the
    proof's htu; the endpoint's main URL stays accepted, any other URL is refused."""
    from asrv_support import DPoPKey

    key = DPoPKey()
    form = {"grant_type": "client_credentials", "client_id": "mtls-web"}
    environ = _environ(APP_CERT, HTTP_HOST="mtls.id.example")
    for htu in (MTLS_BASE + TOKEN, "https://id.example" + TOKEN):
        headers = {"DPoP": key.proof(htu)}
        res = app.post(TOKEN, form, headers=headers, extra_environ=environ, status=200)
        assert res.json["token_type"] == "DPoP"
    headers = {"DPoP": key.proof("https://elsewhere.example" + TOKEN)}
    res = app.post(TOKEN, form, headers=headers, extra_environ=environ, status=400)
    assert res.json["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"attesto.mtls.enabled": "false", "attesto.token_endpoint_auth_methods": "none"},
            r"attesto\.mtls\.base_url needs attesto\.mtls\.enabled",
        ),
        ({"attesto.mtls.base_url": "http://mtls.id.example"}, r"must be https"),
    ],
)
def test_bad_mtls_base_url_is_refused_at_startup_d24(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationExecutionError, match=message):
        as_app({**MTLS, "attesto.mtls.base_url": MTLS_BASE, **settings})


def test_mtls_base_url_must_be_a_url() -> None:
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.mtls\.base_url"):
        as_app({**MTLS, "attesto.mtls.base_url": "mtls.id.example"})


# -- PAR (RFC 9126 §2 with RFC 8705 §2) ---------------------------------------------------


def _push_form() -> dict[str, str]:
    return {
        "client_id": "mtls-web",
        "response_type": "code",
        "redirect_uri": "https://app.example/cb",
        "scope": "read",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }


def test_par_with_a_client_certificate_rfc8705_2_2(app: TestApp) -> None:
    res = app.post(PAR, _push_form(), extra_environ=_environ(APP_CERT), status=201)
    assert res.json["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")


@pytest.mark.parametrize("cert", [STRANGER_CERT, None], ids=["wrong_certificate", "none"])
def test_par_without_the_registered_certificate_is_invalid_client_rfc8705_2_2(
    app: TestApp, cert: x509.Certificate | None
) -> None:
    _refused(app.post(PAR, _push_form(), extra_environ=_environ(cert), status=401), cert)


# -- revocation (RFC 7009 §2.1 with RFC 8705 §2) ------------------------------------------


def test_revocation_with_a_client_certificate_rfc8705_2_2(app: TestApp) -> None:
    token = _token(app)
    form = {"token": token, "client_id": "mtls-web"}
    res = app.post(REVOKE, form, extra_environ=_environ(APP_CERT), status=200)
    assert res.body == b""


@pytest.mark.parametrize("cert", [STRANGER_CERT, None], ids=["wrong_certificate", "none"])
def test_revocation_without_the_registered_certificate_is_invalid_client_rfc8705_2_2(
    app: TestApp, cert: x509.Certificate | None
) -> None:
    form = {"token": _token(app), "client_id": "mtls-web"}
    _refused(app.post(REVOKE, form, extra_environ=_environ(cert), status=401), cert)


# -- introspection (RFC 7662 §2.1 with RFC 8705 §2.1) -------------------------------------


def test_introspection_with_a_pki_certificate_rfc8705_2_1(app: TestApp) -> None:
    token = _token(app)
    form = {"token": token, "client_id": "mtls-rs"}
    res = app.post(INTROSPECT, form, extra_environ=_environ(RS_CERT, verified=True), status=200)
    assert res.json["active"] is True
    assert res.json["client_id"] == "mtls-web"
    thumbprint = _b64(hashlib.sha256(APP_CERT.public_bytes(serialization.Encoding.DER)).digest())
    assert res.json["cnf"] == {"x5t#S256": thumbprint}


@pytest.mark.parametrize(
    ("cert", "verified"),
    [(RS_CERT, False), (STRANGER_CERT, True), (None, False)],
    ids=["unvalidated_chain_d14", "wrong_subject", "none"],
)
def test_introspection_without_a_matching_validated_certificate_is_invalid_client_rfc8705_2_1(
    app: TestApp, cert: x509.Certificate | None, verified: bool
) -> None:
    form = {"token": _token(app), "client_id": "mtls-rs"}
    environ = _environ(cert, verified=verified)
    _refused(app.post(INTROSPECT, form, extra_environ=environ, status=401), cert)
