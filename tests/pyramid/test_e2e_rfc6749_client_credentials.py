"""End to end: the client credentials grant (RFC 6749 §4.4) at ``POST /oauth/token``, with
resource indicators (RFC 8707) and the token response of RFC 6749 §5.1."""

from __future__ import annotations

import pytest
from asrv_support import ISSUER, as_app, basic, client_assertion, events, verify_access_token

from pyramid_attesto.core.tokens import AccessTokenVerifier
from pyramid_attesto.runtime import get_attesto

TOKEN = "/oauth/token"


def test_client_credentials_with_basic_auth_rfc6749_4_4() -> None:
    app = as_app()
    seen = events(app)
    res = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"), status=200)
    assert res.content_type == "application/json"
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["Pragma"] == "no-cache"
    assert "WWW-Authenticate" not in res.headers
    body = res.json
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    # No scope requested: the client's registered scope (RFC 6749 §3.3).
    assert body["scope"] == "read write"
    token = verify_access_token(app, body["access_token"])
    assert token.subject == "svc"
    assert token.client_id == "svc"
    assert token.principal_kind == "client"
    assert token.audience == (ISSUER,)
    assert token.cnf is None
    assert [e.name for e in seen] == ["token_issued"]
    assert seen[0].client_id == "svc"
    assert seen[0].metadata["jti"] == token.jti
    assert body["access_token"] not in repr(seen[0])


def test_no_refresh_token_for_client_credentials_rfc6749_4_4_3() -> None:
    res = as_app().post(TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"))
    assert "refresh_token" not in res.json


def test_client_secret_post_rfc6749_2_3_1() -> None:
    res = as_app().post(
        TOKEN,
        {
            "grant_type": "client_credentials",
            "client_id": "svc-post",
            "client_secret": "post-secret-0123456789",
        },
        status=200,
    )
    assert res.json["scope"] == "read"


def test_requested_scope_is_narrowed_rfc6749_3_3() -> None:
    res = as_app().post(
        TOKEN, {"grant_type": "client_credentials", "scope": "read"}, headers=basic("svc")
    )
    assert res.json["scope"] == "read"


def test_unregistered_scope_is_invalid_scope_rfc6749_5_2() -> None:
    res = as_app().post(
        TOKEN,
        {"grant_type": "client_credentials", "scope": "read admin"},
        headers=basic("svc"),
        status=400,
    )
    assert res.json == {
        "error": "invalid_scope",
        "error_description": "a requested scope is not registered for this client",
    }
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["x-tm"] == "commit"


def test_malformed_scope_is_invalid_scope_rfc6749_3_3() -> None:
    res = as_app().post(
        TOKEN,
        {"grant_type": "client_credentials", "scope": 'read "x'},
        headers=basic("svc"),
        status=400,
    )
    assert res.json["error"] == "invalid_scope"


def test_wrong_secret_is_invalid_client_with_basic_challenge_rfc6749_5_2() -> None:
    app = as_app()
    seen = events(app)
    res = app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers=basic("svc", "wrong-secret"),
        status=401,
    )
    assert res.json["error"] == "invalid_client"
    assert res.headers["WWW-Authenticate"].startswith("Basic ")
    assert res.headers["Cache-Control"] == "no-store"
    assert "wrong-secret" not in res.text
    assert [e.name for e in seen] == ["token_denied"]


def test_unknown_client_is_invalid_client_rfc6749_5_2() -> None:
    res = as_app().post(
        TOKEN, {"grant_type": "client_credentials"}, headers=basic("nobody", "x"), status=401
    )
    assert res.json["error"] == "invalid_client"


def test_no_client_authentication_is_invalid_client_rfc6749_5_2() -> None:
    res = as_app().post(TOKEN, {"grant_type": "client_credentials"}, status=401)
    assert res.json["error"] == "invalid_client"


def test_public_client_may_not_use_client_credentials_rfc6749_4_4() -> None:
    res = as_app().post(
        TOKEN, {"grant_type": "client_credentials", "client_id": "cc-pub"}, status=400
    )
    assert res.json == {
        "error": "unauthorized_client",
        "error_description": "client_credentials is for confidential clients only",
    }


def test_grant_not_registered_is_unauthorized_client_rfc6749_5_2() -> None:
    res = as_app().post(
        TOKEN, {"grant_type": "client_credentials"}, headers=basic("web"), status=400
    )
    assert res.json["error"] == "unauthorized_client"


def test_grant_not_served_is_unsupported_grant_type_rfc6749_5_2() -> None:
    app = as_app({"attesto.grant_types_supported": "authorization_code"})
    res = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"), status=400)
    assert res.json["error"] == "unsupported_grant_type"


def test_unknown_grant_type_is_unsupported_grant_type_rfc6749_5_2() -> None:
    app = as_app()
    for grant in ("password", "implicit", "urn:example:custom"):
        res = app.post(TOKEN, {"grant_type": grant}, headers=basic("svc"), status=400)
        assert res.json["error"] == "unsupported_grant_type"


def test_missing_grant_type_is_invalid_request_rfc6749_5_2() -> None:
    res = as_app().post(TOKEN, {"scope": "read"}, headers=basic("svc"), status=400)
    assert res.json == {
        "error": "invalid_request",
        "error_description": "the grant_type parameter is required",
    }


def test_resource_becomes_the_single_audience_rfc8707_2() -> None:
    app = as_app({"attesto.resources": "https://api.example/mcp https://other.example"})
    res = app.post(
        TOKEN,
        {"grant_type": "client_credentials", "resource": "https://api.example/mcp"},
        headers=basic("svc"),
    )
    token = verify_access_token(app, res.json["access_token"], "https://api.example/mcp")
    assert token.audience == ("https://api.example/mcp",)


def test_default_resource_is_the_audience_without_resource_d11() -> None:
    app = as_app({"attesto.default_resource": "https://api.example"})
    res = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"))
    assert verify_access_token(app, res.json["access_token"], "https://api.example").audience == (
        "https://api.example",
    )


@pytest.mark.parametrize(
    ("resources", "description"),
    [
        (["https://unknown.example"], "resource is not served here"),
        (["https://api.example/mcp", "https://other.example"], "only one resource per token"),
        (["https://api.example/mcp#frag"], "resource must be an absolute URI without fragment"),
        (["/relative"], "resource must be an absolute URI without fragment"),
    ],
)
def test_bad_resource_is_invalid_target_rfc8707_2(resources: list[str], description: str) -> None:
    app = as_app({"attesto.resources": "https://api.example/mcp https://other.example"})
    params = [("grant_type", "client_credentials")] + [("resource", r) for r in resources]
    res = app.post(TOKEN, params, headers=basic("svc"), status=400)
    assert res.json["error"] == "invalid_target"
    assert res.json["error_description"].startswith(description)


def test_same_resource_twice_is_one_resource_rfc8707_2() -> None:
    app = as_app({"attesto.resources": "https://api.example/mcp"})
    params = [("grant_type", "client_credentials")] + [("resource", "https://api.example/mcp")] * 2
    app.post(TOKEN, params, headers=basic("svc"), status=200)


def test_token_lifetime_follows_the_setting() -> None:
    app = as_app({"attesto.access_token_ttl": "60"})
    res = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"))
    assert res.json["expires_in"] == 60
    runtime = get_attesto(app.app.registry)
    token = AccessTokenVerifier(
        runtime.keystore, issuer=ISSUER, audience=ISSUER, clock=runtime.clock
    ).verify(res.json["access_token"])
    assert token.expires_at - token.issued_at == 60


# -- private_key_jwt (RFC 7523 §2.2, OIDC Core §9) -------------------------------------------

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _assertion_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }


def test_private_key_jwt_rfc7523_2_2() -> None:
    res = as_app().post(TOKEN, _assertion_form(client_assertion()), status=200)
    assert res.json["scope"] == "read"


def test_replayed_assertion_is_invalid_client_rfc7523_3() -> None:
    app = as_app()
    assertion = client_assertion()
    app.post(TOKEN, _assertion_form(assertion), status=200)
    res = app.post(TOKEN, _assertion_form(assertion), status=401)
    assert res.json["error"] == "invalid_client"


def test_assertion_with_the_endpoint_as_aud_is_refused_by_default_d7() -> None:
    assertion = client_assertion(aud=ISSUER + "/oauth/token")
    res = as_app().post(TOKEN, _assertion_form(assertion), status=401)
    assert res.json["error"] == "invalid_client"


def test_assertion_signed_by_another_key_is_invalid_client_rfc7523_3() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    assertion = client_assertion(key=ec.generate_private_key(ec.SECP256R1()))
    res = as_app().post(TOKEN, _assertion_form(assertion), status=401)
    assert res.json["error"] == "invalid_client"


def test_private_key_jwt_client_cannot_use_a_secret_rfc6749_2_3() -> None:
    res = as_app().post(
        TOKEN,
        {"grant_type": "client_credentials", "client_id": "jwt-svc", "client_secret": "x"},
        status=401,
    )
    assert res.json["error"] == "invalid_client"


def test_failed_client_authentication_is_an_event_without_secrets() -> None:
    app = as_app()
    seen = events(app)
    app.post(
        TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc", "s3cr3t"), status=401
    )
    assert [(e.name, e.result, e.reason) for e in seen] == [
        ("token_denied", "failure", "wrong_secret")
    ]
    assert "s3cr3t" not in repr(seen)
