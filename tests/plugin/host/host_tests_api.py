"""The host's tests of its API, written with pytest_attesto's fixtures only.

Each fixture's happy path is accepted by the real resource server, and each broken proof and
each bad token is refused by it with the RFC's error.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from pytest_attesto import (
    BROKEN_PROOF_ERRORS,
    BROKEN_PROOFS,
    assert_challenge,
    assert_oauth_error,
)

READ = ["read:reports"]

# -- attesto_client ---------------------------------------------------------------------------


def test_a_token_with_the_scope_gets_200(attesto_client: Any) -> None:
    response = attesto_client.as_subject("alice", scopes=READ).get("/api/reports")
    assert response.json["sub"] == "alice"
    assert response.json["token_type"] == "Bearer"
    assert "WWW-Authenticate" not in response.headers


def test_a_token_without_the_scope_gets_403_rfc6750_3_1(attesto_client: Any) -> None:
    client = attesto_client.as_subject("alice", scopes=["write:reports"])
    response = client.get("/api/reports", status=403)
    assert_oauth_error(response, "insufficient_scope", status=403, scheme="Bearer")
    assert_challenge(response, "Bearer", status=403, scope="read:reports")


def test_an_expired_token_gets_401_rfc6750_3_1(attesto_client: Any, attesto_clock: Any) -> None:
    client = attesto_client.as_subject("alice", scopes=READ, lifetime=60)
    client.get("/api/reports")
    attesto_clock.advance(60 + 30 + 1)  # past exp and the resource server's 30 s leeway
    assert_oauth_error(client.get("/api/reports", status=401), "invalid_token", status=401)


def test_no_token_gets_a_challenge_without_error_rfc6750_3_1(attesto_client: Any) -> None:
    response = attesto_client.get("/api/reports", status=401)
    assert_challenge(response, "Bearer", error=None, scope="read:reports")
    assert_challenge(response, "DPoP", error=None)


def test_a_dpop_client_gets_200_with_a_fresh_proof_each_time(attesto_client: Any) -> None:
    client = attesto_client.as_subject("alice", scopes=READ, dpop=True)
    for _ in range(3):
        assert client.get("/api/reports").json["token_type"] == "DPoP"


def test_a_dpop_client_posts_with_the_method_in_its_proof(attesto_client: Any) -> None:
    client = attesto_client.as_subject("alice", scopes=["write:reports"], dpop=True)
    assert client.post_json("/api/reports", {"title": "Q3"}).json["sub"] == "alice"


def test_attesto_scopes_needs_every_scope(attesto_client: Any) -> None:
    both = attesto_client.as_subject("alice", scopes=["read:reports", "write:reports"])
    assert both.get("/api/admin").status_int == 200
    one = attesto_client.as_subject("alice", scopes=READ)
    assert_oauth_error(one.get("/api/admin", status=403), "insufficient_scope", status=403)


def test_a_client_credentials_token_is_a_client_principal(attesto_client: Any) -> None:
    response = attesto_client.as_client("reporting-job", scopes=READ).get("/api/reports")
    assert response.json["kind"] == "client"
    assert response.json["sub"] == response.json["client_id"] == "reporting-job"


def test_a_dpop_bound_token_sent_as_bearer_is_refused_rfc9449_7_2(
    attesto_client: Any, attesto_token: Any, dpop_key: Any
) -> None:
    token = attesto_token("alice", scopes=READ, dpop_key=dpop_key)
    client = attesto_client.with_token(token, scheme="Bearer")
    assert_oauth_error(client.get("/api/reports", status=401), "invalid_token", status=401)


@pytest.mark.parametrize("broken", BROKEN_PROOFS)
def test_each_broken_proof_is_refused_rfc9449_4_3(attesto_client: Any, broken: str) -> None:
    client = attesto_client.as_subject("alice", scopes=READ, dpop=True)
    client.get("/api/reports")  # an earlier proof, for reused_jti
    response = client.get("/api/reports", broken=broken, status=401)
    assert_oauth_error(response, BROKEN_PROOF_ERRORS[broken], status=401, scheme="DPoP")


@pytest.mark.attesto(settings={"attesto.dpop.resource_nonce": "true"})
def test_the_client_retries_once_with_the_server_nonce_rfc9449_9(attesto_client: Any) -> None:
    client = attesto_client.as_subject("alice", scopes=READ, dpop=True)
    assert client.dpop_nonce is None
    assert client.get("/api/reports").json["token_type"] == "DPoP"
    nonce = client.dpop_nonce
    assert nonce
    assert client.get("/api/reports").status_int == 200
    assert client.dpop_nonce == nonce  # the kept nonce was accepted: no second round trip


@pytest.mark.attesto(settings={"attesto.dpop.resource_nonce": "true"})
def test_a_proof_without_the_nonce_is_answered_use_dpop_nonce_rfc9449_9(
    attesto_client: Any, attesto_token: Any, dpop_key: Any, dpop_proof: Any
) -> None:
    token = attesto_token("alice", scopes=READ, dpop_key=dpop_key)
    proof = dpop_proof("GET", "/api/reports", access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    response = attesto_client.get("/api/reports", headers=headers, status=401)
    assert_oauth_error(response, "use_dpop_nonce", status=401, scheme="DPoP")
    assert response.headers["DPoP-Nonce"]


# -- attesto_token ------------------------------------------------------------------------------


def test_a_minted_token_is_accepted(attesto_client: Any, attesto_token: Any) -> None:
    token = attesto_token("bob", scopes="read:reports write:reports", extra={"roles": ["x"]})
    response = attesto_client.with_token(token).get("/api/reports")
    assert response.json["scopes"] == ["read:reports", "write:reports"]


def test_an_expired_minted_token_is_refused_rfc9068_4(
    attesto_client: Any, attesto_token: Any
) -> None:
    client = attesto_client.with_token(attesto_token.expired("bob", scopes=READ))
    assert_oauth_error(client.get("/api/reports", status=401), "invalid_token", status=401)


@pytest.mark.attesto(audience="https://other-api.example.com")
def test_a_token_for_another_resource_is_refused_rfc8707(attesto_client: Any) -> None:
    client = attesto_client.as_subject("alice", scopes=READ)
    assert_oauth_error(client.get("/api/reports", status=401), "invalid_token", status=401)


@pytest.mark.attesto(issuer="https://evil.example.com")
def test_a_token_from_another_issuer_is_refused_rfc9068_4(attesto_client: Any) -> None:
    client = attesto_client.as_subject("alice", scopes=READ)
    assert_oauth_error(client.get("/api/reports", status=401), "invalid_token", status=401)


def test_an_id_token_is_not_an_access_token_rfc8725_3_11(
    attesto_client: Any, attesto_token: Any
) -> None:
    client = attesto_client.with_token(attesto_token.id_token("alice"))
    assert_oauth_error(client.get("/api/reports", status=401), "invalid_token", status=401)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_tokens_of_each_keystore_algorithm_are_accepted(
    attesto_client: Any, attesto_token: Any, alg: str
) -> None:
    token = attesto_token("alice", scopes=READ, alg=alg)
    assert attesto_client.with_token(token).get("/api/reports").status_int == 200


# -- dpop_key and dpop_proof ----------------------------------------------------------------


def test_a_hand_made_proof_is_accepted(
    attesto_client: Any, attesto_token: Any, dpop_key: Any, dpop_proof: Any
) -> None:
    token = attesto_token("alice", scopes=READ, jkt=dpop_key.jkt)
    headers = {"Authorization": f"DPoP {token}"}
    headers["DPoP"] = dpop_proof("GET", "/api/reports?page=2", access_token=token)
    assert attesto_client.get("/api/reports?page=2", headers=headers).status_int == 200


def test_the_same_proof_twice_is_a_replay_rfc9449_11_1(
    attesto_client: Any, attesto_token: Any, dpop_key: Any, dpop_proof: Any
) -> None:
    token = attesto_token("alice", scopes=READ, dpop_key=dpop_key)
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": dpop_proof("GET", "/api/reports", access_token=token),
    }
    attesto_client.get("/api/reports", headers=headers)
    response = attesto_client.get("/api/reports", headers=headers, status=401)
    assert_oauth_error(response, "invalid_dpop_proof", status=401, scheme="DPoP")


@pytest.mark.parametrize("broken", BROKEN_PROOFS)
def test_each_hand_made_broken_proof_is_refused_rfc9449_4_3(
    attesto_client: Any, attesto_token: Any, dpop_key: Any, dpop_proof: Any, broken: str
) -> None:
    token = attesto_token("alice", scopes=READ, dpop_key=dpop_key)
    headers = {"Authorization": f"DPoP {token}"}
    headers["DPoP"] = dpop_proof("GET", "/api/reports", access_token=token)
    attesto_client.get("/api/reports", headers=headers)  # accepted; reused_jti repeats its jti
    headers["DPoP"] = dpop_proof("GET", "/api/reports", access_token=token, broken=broken)
    response = attesto_client.get("/api/reports", headers=headers, status=401)
    assert_oauth_error(response, BROKEN_PROOF_ERRORS[broken], status=401)


@pytest.mark.attesto(dpop_alg="EdDSA")
def test_the_marker_chooses_the_dpop_algorithm(attesto_client: Any, dpop_key: Any) -> None:
    assert dpop_key.alg == "EdDSA"
    client = attesto_client.as_subject("alice", scopes=READ, dpop=True)
    assert client.get("/api/reports").status_int == 200


# -- attesto_keystore and attesto_clock -------------------------------------------------------

_SEEN: list[Any] = []


@pytest.mark.parametrize("round_", [1, 2])
def test_the_keystore_is_generated_once_per_session(attesto_keystore: Any, round_: int) -> None:
    _SEEN.append(attesto_keystore)
    assert all(k is _SEEN[0] for k in _SEEN)
    assert attesto_keystore.algorithms == {"ES256", "RS256", "EdDSA"}
    for jwk in attesto_keystore.jwks()["keys"]:
        assert "d" not in jwk


@pytest.mark.attesto(now=datetime.datetime(2030, 1, 2, tzinfo=datetime.UTC))
def test_the_marker_freezes_time(attesto_clock: Any, attesto_client: Any) -> None:
    assert attesto_clock.now() == datetime.datetime(2030, 1, 2, tzinfo=datetime.UTC).timestamp()
    assert attesto_client.as_subject("alice", scopes=READ).get("/api/reports").status_int == 200


@pytest.mark.attesto(now=1_900_000_000)
def test_tokens_are_minted_at_the_frozen_time(attesto_token: Any) -> None:
    minted = attesto_token.mint("alice", lifetime=120)
    assert (minted.issued_at, minted.expires_at) == (1_900_000_000, 1_900_000_120)


def test_flows_need_the_authorization_server(attesto_flow: Any) -> None:
    with pytest.raises(AssertionError, match="does the app include pyramid_attesto"):
        attesto_flow.metadata()
