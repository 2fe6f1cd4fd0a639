"""The host's tests of its authorization server and API through ``attesto_flow``."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_attesto import assert_oauth_error

READ = ["read:reports"]


def test_the_code_flow_gives_a_token_the_api_accepts(attesto_flow: Any) -> None:
    client = attesto_flow.register_client()
    tokens = attesto_flow.tokens(client, "alice", scopes=READ)
    assert tokens.token_type == "Bearer"
    assert tokens.scopes == ("read:reports",)
    assert tokens.refresh_token
    response = attesto_flow.client_for(tokens).get("/api/reports")
    assert response.json == {"sub": "alice", "kind": "user", "token_type": "Bearer"}


def test_a_dpop_code_flow_binds_and_refreshes_rfc9449_5(attesto_flow: Any) -> None:
    client = attesto_flow.register_client()
    tokens = attesto_flow.tokens(client, "alice", scopes=READ, dpop=True)
    assert tokens.token_type == "DPoP"
    api = attesto_flow.client_for(tokens)
    assert api.get("/api/reports").json["token_type"] == "DPoP"
    refreshed = attesto_flow.refresh(client, tokens.refresh_token, key=tokens.key)
    assert attesto_flow.client_for(refreshed).get("/api/reports").status_int == 200
    bearer = attesto_flow.client.with_token(tokens.access_token, scheme="Bearer")
    assert_oauth_error(bearer.get("/api/reports", status=401), "invalid_token", status=401)


@pytest.mark.attesto(settings={"attesto.dpop.nonce": "hmac"})
def test_the_flow_follows_the_token_endpoint_nonce_rfc9449_8(attesto_flow: Any) -> None:
    client = attesto_flow.register_client()
    tokens = attesto_flow.tokens(client, "alice", scopes=READ, dpop=True)
    assert tokens.token_type == "DPoP"
    assert attesto_flow.client.nonce_for(attesto_flow.endpoint("token_endpoint"))
    assert attesto_flow.client.dpop_nonce is None  # the API's origin asked for none


def test_client_credentials_for_a_confidential_client_rfc6749_4_4(attesto_flow: Any) -> None:
    client = attesto_flow.register_client(
        "reporting-job", public=False, grant_types=["client_credentials"]
    )
    assert client.secret
    tokens = attesto_flow.client_credentials(client, scopes=READ)
    response = attesto_flow.client_for(tokens).get("/api/reports")
    assert response.json == {"sub": "reporting-job", "kind": "client", "token_type": "Bearer"}


def test_a_wrong_secret_is_invalid_client_rfc6749_5_2(attesto_flow: Any) -> None:
    from pytest_attesto import RegisteredClient

    client = attesto_flow.register_client("job", public=False, grant_types=["client_credentials"])
    wrong = RegisteredClient(client.client, "not-the-secret")
    response = attesto_flow.token_request(wrong, {"grant_type": "client_credentials"}, status=401)
    assert_oauth_error(response, "invalid_client", status=401)


def test_consent_denied_is_access_denied_rfc6749_4_1_2_1(
    attesto_flow: Any, attesto_consent: Any
) -> None:
    client = attesto_flow.register_client()
    attesto_consent.grant = False
    response = attesto_flow.authorization_request(client, "alice", scopes=READ)
    assert_oauth_error(response, "access_denied", status=302)
    assert attesto_consent.seen[-1].client.client_id == client.client_id


def test_nobody_logged_in_with_prompt_none_is_login_required_oidc_core_3_1_2_6(
    attesto_flow: Any,
) -> None:
    client = attesto_flow.register_client()
    response = attesto_flow.authorization_request(client, None, scopes=READ, prompt="none")
    assert_oauth_error(response, "login_required", status=302)


def test_a_code_is_single_use_rfc6749_4_1_2(attesto_flow: Any) -> None:
    client = attesto_flow.register_client()
    code = attesto_flow.authorize(client, "alice", scopes=READ)
    attesto_flow.exchange(client, code)
    form = {
        "grant_type": "authorization_code",
        "code": code.code,
        "redirect_uri": code.redirect_uri,
        "code_verifier": code.code_verifier,
    }
    response = attesto_flow.token_request(client, form, status=400)
    assert_oauth_error(response, "invalid_grant", status=400)


def test_an_openid_flow_gets_an_id_token(attesto_flow: Any, attesto_keystore: Any) -> None:
    client = attesto_flow.register_client()
    tokens = attesto_flow.tokens(client, "alice", scopes=["openid", *READ], nonce="n-1")
    assert tokens.id_token


def test_clients_are_forgotten_between_tests(attesto_clients: Any) -> None:
    assert attesto_clients.load_client("reporting-job") is None
    assert attesto_clients.load_client("test-client-1") is None
