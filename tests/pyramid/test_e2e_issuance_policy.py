"""End to end: the host's issuance decisions at the token, authorization and PAR endpoints —
the refresh-token policy (RFC 6749 §1.5, §4.1.4; OIDC Core §11) and the per-client RFC 8707
resource allow-list (``invalid_target``, RFC 8707 §2) — and RFC 8705 §4 certificate-bound
refresh tokens of public clients (checked on refresh), which confidential clients' refresh
tokens are not (RFC 8705 §7.1: bound through client authentication)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Sequence
from typing import Any

import pytest
from asrv_support import CLIENTS, Consent, as_app, basic, stores, verify_access_token
from resource_support import certificate, x5t_s256
from webtest import TestApp

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.stores import AuthorizationCode

TOKEN = "/oauth/token"
PAR = "/oauth/par"
GRANTS = {"attesto.grant_types_supported": "authorization_code refresh_token client_credentials"}
VERIFIER = "i" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
PUB_CB = "http://127.0.0.1/cb"
WEB_CB = "https://app.example/cb"
API = "https://api.example/mcp"
OTHER = "https://other.example"


def _code(app: TestApp, client_id: str, scope: tuple[str, ...] = ("read",), **fields: Any) -> str:
    code = secrets.token_urlsafe(32)
    fields.setdefault("redirect_uri", WEB_CB if client_id == "web" else PUB_CB)
    stores(app).codes.put(
        code,
        AuthorizationCode(
            client_id=client_id,
            subject="alice",
            scope=scope,
            expires_at=int(time.time()) + 60,
            code_challenge=CHALLENGE.decode(),
            **fields,
        ),
    )
    return code


def _redeem(app: TestApp, client_id: str, code: str, **kw: Any) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": WEB_CB if client_id == "web" else PUB_CB,
        "code_verifier": VERIFIER,
    }
    headers = kw.pop("headers", {})
    if client_id == "web":
        headers = {**basic("web"), **headers}
    else:
        form["client_id"] = client_id
    return app.post(TOKEN, form, headers=headers, **kw)


# -- refresh-token policy -----------------------------------------------------------------


class OnlyOffline:
    """Refresh tokens only with offline_access (the OIDC Core §11 reading)."""

    def issue_refresh_token(
        self, client: Client, scopes: Sequence[str], *, subject: str, grant_type: str
    ) -> bool:
        assert grant_type == "authorization_code"
        assert subject == "alice"
        return "offline_access" in scopes


def test_default_policy_issues_to_a_client_registered_for_refresh_token_rfc6749_1_5() -> None:
    # DESIGN.md "What real clients do": no offline_access, still a refresh token.
    app = as_app(GRANTS)
    res = _redeem(app, "pub", _code(app, "pub"))
    assert "refresh_token" in res.json


def test_refresh_policy_can_require_offline_access_oidc_core_11() -> None:
    app = as_app(GRANTS, set_attesto_refresh_token_policy=OnlyOffline())
    res = _redeem(app, "web", _code(app, "web"))
    assert "refresh_token" not in res.json
    res = _redeem(app, "web", _code(app, "web", scope=("read", "offline_access")))
    assert "refresh_token" in res.json


def never(client: Client, scopes: Sequence[str], *, subject: str, grant_type: str) -> bool:
    return False


issue_refresh_token = never  # this module doubles as a RefreshTokenPolicy "module of functions"


def test_refresh_policy_by_dotted_name_rfc6749_1_5() -> None:
    app = as_app({**GRANTS, "attesto.refresh_token_policy": "test_e2e_issuance_policy"})
    res = _redeem(app, "web", _code(app, "web", scope=("read", "offline_access")))
    assert "refresh_token" not in res.json


def test_refresh_policy_truthy_non_bool_is_no() -> None:
    class Sloppy:
        def issue_refresh_token(self, *args: Any, **kw: Any) -> object:
            return "yes"

    app = as_app(GRANTS, set_attesto_refresh_token_policy=Sloppy())
    assert "refresh_token" not in _redeem(app, "pub", _code(app, "pub")).json


def test_refresh_policy_is_not_asked_when_the_grant_is_not_served_rfc6749_5_2() -> None:
    class Always:
        def issue_refresh_token(self, *args: Any, **kw: Any) -> bool:
            return True

    app = as_app(
        {"attesto.grant_types_supported": "authorization_code"},
        set_attesto_refresh_token_policy=Always(),
    )
    assert "refresh_token" not in _redeem(app, "pub", _code(app, "pub")).json


# -- per-client resource allow-list (RFC 8707 §2) ------------------------------------------


class OnlySvcReachesApi:
    def allow_resource(self, client: Client, resource: str) -> bool:
        return resource != API or client.client_id in ("svc", "pub")


RESOURCES = {**GRANTS, "attesto.resources": f"{API} {OTHER}"}


def _cc(app: TestApp, client_id: str, resource: str, status: int) -> Any:
    form = {"grant_type": "client_credentials", "resource": resource}
    return app.post(TOKEN, form, headers=basic(client_id), status=status)


def test_client_outside_its_resources_is_invalid_target_rfc8707_2() -> None:
    app = as_app(RESOURCES, set_attesto_client_resource_policy=OnlySvcReachesApi())
    ok = _cc(app, "svc", API, 200)
    assert verify_access_token(app, ok.json["access_token"], audience=API).audience == (API,)
    res = _cc(app, "rs", API, 400)
    assert res.json == {
        "error": "invalid_target",
        "error_description": "the client may not obtain tokens for this resource",
    }
    assert res.headers["Cache-Control"] == "no-store"
    _cc(app, "rs", OTHER, 200)  # the rest of the allow-list stays open to it


def test_per_client_policy_only_narrows_the_global_list_rfc8707_2() -> None:
    class Everything:
        def allow_resource(self, client: Client, resource: str) -> bool:
            return True

    app = as_app(RESOURCES, set_attesto_client_resource_policy=Everything())
    res = _cc(app, "svc", "https://unlisted.example", 400)
    assert res.json["error"] == "invalid_target"


def test_no_resource_gets_the_default_audience_without_asking_d11() -> None:
    class Nothing:
        def allow_resource(self, client: Client, resource: str) -> bool:
            raise AssertionError("not asked")

    app = as_app(RESOURCES, set_attesto_client_resource_policy=Nothing())
    res = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"))
    assert verify_access_token(app, res.json["access_token"]).audience == ("https://id.example",)


class Withdrawable:
    allowed: bool = True

    def allow_resource(self, client: Client, resource: str) -> bool:
        return self.allowed


def test_withdrawn_resource_stops_the_code_and_the_refresh_rfc8707_2() -> None:
    policy = Withdrawable()
    app = as_app(RESOURCES, set_attesto_client_resource_policy=policy)
    res = _redeem(app, "pub", _code(app, "pub", resource=(API,)))
    assert verify_access_token(app, res.json["access_token"], audience=API).audience == (API,)
    refresh = res.json["refresh_token"]
    policy.allowed = False
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "pub"}
    denied = app.post(TOKEN, form, status=400)
    assert denied.json["error"] == "invalid_target"
    code = _code(app, "pub", resource=(API,))
    assert _redeem(app, "pub", code, status=400).json["error"] == "invalid_target"
    policy.allowed = True  # the refused refresh did not rotate the token
    assert app.post(TOKEN, form, status=200).json["refresh_token"]


def _push(app: TestApp, resource: str, client_id: str = "pub", **kw: Any) -> Any:
    form = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": PUB_CB,
        "scope": "read",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        "resource": resource,
    }
    return app.post(PAR, form, **kw)


def test_par_refuses_a_resource_outside_the_clients_list_rfc8707_2() -> None:
    class NotPub:
        def allow_resource(self, client: Client, resource: str) -> bool:
            return client.client_id != "pub" or resource == OTHER

    app = as_app(
        RESOURCES, set_attesto_client_resource_policy=NotPub(), set_attesto_consent_policy=Consent()
    )
    res = _push(app, API, status=400)
    assert res.json["error"] == "invalid_target"
    assert _push(app, OTHER, status=201).json["request_uri"]
    assert _push(app, "https://unlisted.example", status=400).json["error"] == "invalid_target"


# -- RFC 8705 §4: certificate-bound refresh tokens of public clients ------------------------

MTLS = {**GRANTS, "attesto.mtls.enabled": "true"}
CERT_A_DER, CERT_A = certificate("device-a")
CERT_B_DER, CERT_B = certificate("device-b")
CLIENTS["pub-mtls"] = Client(
    client_id="pub-mtls",
    token_endpoint_auth_method="none",
    application_type="native",
    redirect_uris=(PUB_CB,),
    grant_types=("authorization_code", "refresh_token"),
    scope="read",
    tls_client_certificate_bound_access_tokens=True,
)
CLIENTS["web-mtls"] = Client(
    client_id="web-mtls",
    redirect_uris=(WEB_CB,),
    grant_types=("authorization_code", "refresh_token"),
    scope="read",
    tls_client_certificate_bound_access_tokens=True,
)


def _cert(pem: str | None) -> dict[str, str]:
    return {"SSL_CLIENT_CERT": pem} if pem is not None else {}


def _refresh(
    app: TestApp, token: str, pem: str | None, status: int, client: str = "pub-mtls"
) -> Any:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    headers = {}
    if client == "pub-mtls":
        form["client_id"] = client
    else:
        headers = basic("web", None) if client == "web" else _web_mtls_auth()
    return app.post(TOKEN, form, headers=headers, extra_environ=_cert(pem), status=status)


def _web_mtls_auth() -> dict[str, str]:
    from asrv_support import HASHES, SECRETS

    SECRETS["web-mtls"] = SECRETS["web"]
    HASHES["web-mtls"] = HASHES["web"]
    return basic("web-mtls")


@pytest.fixture
def mtls_refresh() -> tuple[TestApp, str]:
    app = as_app(MTLS)
    res = _redeem(app, "pub-mtls", _code(app, "pub-mtls"), extra_environ=_cert(CERT_A))
    assert verify_access_token(app, res.json["access_token"]).cnf == {
        "x5t#S256": x5t_s256(CERT_A_DER)
    }
    entry = stores(app).refresh_tokens.get(res.json["refresh_token"])
    assert entry is not None
    assert entry.grant.x5t_s256 == x5t_s256(CERT_A_DER)
    return app, res.json["refresh_token"]


def test_public_client_refresh_with_its_certificate_rfc8705_4(
    mtls_refresh: tuple[TestApp, str],
) -> None:
    app, refresh = mtls_refresh
    res = _refresh(app, refresh, CERT_A, 200)
    token = verify_access_token(app, res.json["access_token"])
    assert token.cnf == {"x5t#S256": x5t_s256(CERT_A_DER)}
    entry = stores(app).refresh_tokens.get(res.json["refresh_token"])
    assert entry is not None
    assert entry.grant.x5t_s256 == x5t_s256(CERT_A_DER)


def test_public_client_refresh_with_another_certificate_is_refused_rfc8705_4(
    mtls_refresh: tuple[TestApp, str],
) -> None:
    app, refresh = mtls_refresh
    res = _refresh(app, refresh, CERT_B, 400)
    assert res.json == {
        "error": "invalid_grant",
        "error_description": "the refresh token is bound to another TLS client certificate",
    }
    assert res.headers["Cache-Control"] == "no-store"
    _refresh(app, refresh, CERT_A, 200)  # the refusal did not consume the token


def test_public_client_refresh_without_a_certificate_is_refused_rfc8705_4(
    mtls_refresh: tuple[TestApp, str],
) -> None:
    app, refresh = mtls_refresh
    res = _refresh(app, refresh, None, 400)
    assert res.json["error"] == "invalid_grant"
    assert "present it" in res.json["error_description"]
    _refresh(app, refresh, CERT_A, 200)


def test_confidential_client_refresh_is_bound_by_client_authentication_rfc8705_7_1() -> None:
    app = as_app(MTLS)
    code = _code(app, "web-mtls", redirect_uri=WEB_CB)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": WEB_CB,
        "code_verifier": VERIFIER,
    }
    res = app.post(TOKEN, form, headers=_web_mtls_auth(), extra_environ=_cert(CERT_A))
    entry = stores(app).refresh_tokens.get(res.json["refresh_token"])
    assert entry is not None
    assert entry.grant.x5t_s256 is None
    # A new certificate after rotation: the client authenticates, its new token is bound to
    # the certificate it presents now (RFC 8705 §3).
    again = _refresh(app, res.json["refresh_token"], CERT_B, 200, client="web-mtls")
    token = verify_access_token(app, again.json["access_token"])
    assert token.cnf == {"x5t#S256": x5t_s256(CERT_B_DER)}
