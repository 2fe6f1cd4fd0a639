"""End to end: token exchange (RFC 8693) at the token endpoint: the response shape
(``issued_token_type``, a usable ``token_type``), narrowing, delegation, the D9 binding of a
DPoP-bound subject token, the host policy and each refusal with its exact error."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from asrv_support import (
    KEYSTORE,
    DPoPKey,
    HostClients,
    HostPrincipals,
    as_app,
    basic,
    stores,
    verify_access_token,
)
from webtest import TestApp

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import SystemClock
from pyramid_attesto.core.secret import constant_time_equals, hash_secret
from pyramid_attesto.core.token_exchange import ACCESS_TOKEN_TYPE, GRANT_TYPE, ExchangeRequest
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter

ISSUER = "https://id.example"
API = "https://api.example"
TOKEN = "/oauth/token"
SECRET = "exchanger-secret-0123456789"
EXCHANGER = Client(
    client_id="exchanger",
    grant_types=("client_credentials", GRANT_TYPE),
    scope="read write",
)
PLAIN = Client(client_id="plain", grant_types=("client_credentials",), scope="read")
MINTER = AccessTokenMinter(KEYSTORE, issuer=ISSUER, clock=SystemClock())


class Clients(HostClients):
    def load_client(self, client_id: str) -> Client | None:
        return {"exchanger": EXCHANGER, "plain": PLAIN}.get(client_id) or super().load_client(
            client_id
        )

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        if client.client_id in ("exchanger", "plain"):
            return constant_time_equals(hash_secret(secret), hash_secret(SECRET))
        return super().verify_client_secret(client, secret)


def _app(**directives: Any) -> TestApp:
    return as_app(
        {"attesto.token_exchange.enabled": "true", "attesto.resources": API},
        set_attesto_client_store=Clients(),
        **directives,
    )


def _subject(
    *,
    subject: str = "alice",
    audience: str = API,
    scopes: tuple[str, ...] = ("read", "write"),
    cnf: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    claims = AccessTokenClaims(
        subject=subject,
        client_id="web",
        audience=audience,
        scopes=scopes,
        cnf=cnf,
        principal_kind="user",
        extra=extra or {},
    )
    return MINTER.mint(claims).token


def _exchange(app: TestApp, status: int = 200, client: str = "exchanger", **params: str) -> Any:
    form = {
        "grant_type": GRANT_TYPE,
        "subject_token": params.pop("subject_token", None) or _subject(),
        "subject_token_type": ACCESS_TOKEN_TYPE,
        **params,
    }
    return app.post(TOKEN, form, headers=basic(client, SECRET), status=status)


def test_metadata_lists_token_exchange_when_enabled_rfc8414_2() -> None:
    assert (
        GRANT_TYPE
        in _app().get("/.well-known/oauth-authorization-server").json["grant_types_supported"]
    )
    assert (
        GRANT_TYPE
        not in as_app().get("/.well-known/oauth-authorization-server").json["grant_types_supported"]
    )


def test_an_exchange_answers_issued_token_type_and_bearer_rfc8693_2_2_1() -> None:
    app = _app()
    res = _exchange(app, scope="read")
    body = res.json
    assert res.headers["Cache-Control"] == "no-store"
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read"
    assert "refresh_token" not in body
    token = verify_access_token(app, body["access_token"], audience=API)
    assert (token.subject, token.client_id, token.scopes) == ("alice", "exchanger", ("read",))
    assert token.principal_kind == "user"


def test_an_actor_token_is_recorded_as_act_rfc8693_4_1() -> None:
    app = _app()
    actor = _subject(subject="agent-7", scopes=("read",))
    body = _exchange(app, actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE).json
    token = verify_access_token(app, body["access_token"], audience=API)
    assert token.claims["act"] == {"sub": "agent-7", "client_id": "web"}


def test_a_dpop_bound_subject_yields_a_dpop_token_with_the_same_key_d9() -> None:
    app = _app()
    key = DPoPKey()
    subject = _subject(cnf={"jkt": key.jkt})
    res = app.post(
        TOKEN,
        {
            "grant_type": GRANT_TYPE,
            "subject_token": subject,
            "subject_token_type": ACCESS_TOKEN_TYPE,
        },
        headers={**basic("exchanger", SECRET), "DPoP": key.proof()},
        status=200,
    )
    assert res.json["token_type"] == "DPoP"
    token = verify_access_token(app, res.json["access_token"], audience=API)
    assert token.cnf == {"jkt": key.jkt}


def test_a_dpop_bound_subject_without_a_proof_is_refused_d9_rfc9449_5() -> None:
    res = _exchange(_app(), status=400, subject_token=_subject(cnf={"jkt": DPoPKey().jkt}))
    assert res.json["error"] == "invalid_dpop_proof"


def test_a_dpop_bound_subject_with_another_key_is_refused_d9_rfc9449_5() -> None:
    app = _app()
    res = app.post(
        TOKEN,
        {
            "grant_type": GRANT_TYPE,
            "subject_token": _subject(cnf={"jkt": DPoPKey().jkt}),
            "subject_token_type": ACCESS_TOKEN_TYPE,
        },
        headers={**basic("exchanger", SECRET), "DPoP": DPoPKey().proof()},
        status=400,
    )
    assert res.json["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"scope": "read admin"}, "invalid_scope"),
        ({"resource": ISSUER}, "invalid_target"),
        ({"audience": "https://elsewhere.example"}, "invalid_target"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "invalid_request"),
        ({"subject_token": "not-a-token"}, "invalid_request"),
        ({"subject_token": _subject(audience="https://elsewhere.example")}, "invalid_request"),
        ({"actor_token": "x"}, "invalid_request"),
    ],
)
def test_refusals_rfc8693_2_2_2(params: dict[str, str], error: str) -> None:
    assert _exchange(_app(), status=400, **params).json["error"] == error


def test_a_revoked_subject_token_is_invalid_request_rfc8693_2_2_2() -> None:
    app = _app()
    subject = _subject()
    jti = verify_access_token(app, subject, audience=API).jti
    stores(app).revoked_access_tokens.add(jti, int(time.time()) + 900)
    res = _exchange(app, status=400, subject_token=subject)
    assert res.json["error"] == "invalid_request"


def test_a_disabled_user_cannot_be_exchanged_for_d12() -> None:
    HostPrincipals.disabled.add("mallory")
    try:
        res = _exchange(_app(), status=400, subject_token=_subject(subject="mallory"))
    finally:
        HostPrincipals.disabled.discard("mallory")
    assert res.json["error"] == "invalid_grant"


def test_a_client_not_registered_for_exchange_is_unauthorized_rfc6749_5_2() -> None:
    assert _exchange(_app(), status=400, client="plain").json["error"] == "unauthorized_client"


def test_without_the_setting_the_grant_is_unsupported_rfc6749_5_2() -> None:
    app = as_app(set_attesto_client_store=Clients())
    assert _exchange(app, status=400).json["error"] == "unsupported_grant_type"


class Refuse:
    def authorize_exchange(self, client: Client, exchange: ExchangeRequest) -> Sequence[str] | None:
        return None if exchange.subject.subject == "bob" else exchange.scopes


def test_the_host_policy_can_refuse_rfc8693_2_2_2() -> None:
    app = _app(set_attesto_exchange_policy=Refuse())
    _exchange(app)
    assert _exchange(app, status=400, subject_token=_subject(subject="bob")).json == {
        "error": "invalid_request",
        "error_description": "the exchange is not allowed",
    }
