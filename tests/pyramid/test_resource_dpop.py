"""DPoP-bound access tokens at the resource server: RFC 9449 §4.3, §7, §9, §11.1.

Tokens and proofs are signed by hand with ``cryptography`` (resource_support.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from resource_support import (
    NOW,
    DPoPKey,
    Issuer,
    assert_refused,
    b64,
    challenge_params,
    compact_json,
    ec_key,
    make_app,
    sign,
)
from webtest import TestApp

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.storage.memory import MemoryReplayStore

URL = "https://api.example/api/reports"


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def client() -> DPoPKey:
    return DPoPKey()


@pytest.fixture
def app(tmp_path: Path, issuer: Issuer) -> TestApp:
    return make_app(tmp_path, issuer)


def bound_token(issuer: Issuer, client: DPoPKey, **claims: Any) -> str:
    return issuer.token(cnf={"jkt": client.jkt}, **claims)


def dpop_headers(token: str, proof: str | None) -> dict[str, str]:
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return headers


def refused_proof(app: TestApp, token: str, proof: str | None, error: str) -> dict[str, str]:
    response = app.get("/api/reports", headers=dpop_headers(token, proof), status=401)
    return assert_refused(response, 401, error, scheme="DPoP", scope="read:reports")


# -- success ------------------------------------------------------------------------------


def test_a_dpop_bound_token_with_a_valid_proof_is_accepted_rfc9449_7_1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    response = app.get(
        "/api/reports", headers=dpop_headers(token, client.proof("GET", URL, token=token))
    )
    assert response.json["token_type"] == "DPoP"
    assert "WWW-Authenticate" not in response.headers


def test_htu_is_compared_without_query_and_after_normalisation_rfc9449_4_3(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    for htu in (URL + "?page=2", "HTTPS://API.example:443/api/reports", URL + "#frag"):
        proof = client.proof("GET", htu, token=token)
        app.get("/api/reports?page=2", headers=dpop_headers(token, proof), status=200)


def test_the_dpop_scheme_is_case_insensitive_rfc9110_11_1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    headers = {"Authorization": f"dpop {token}", "DPoP": client.proof("GET", URL, token=token)}
    app.get("/api/reports", headers=headers, status=200)


# -- RFC 9449 §7: binding ------------------------------------------------------------------


def test_a_dpop_bound_token_presented_as_bearer_is_refused_rfc9449_7_2(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    response = app.get(
        "/api/reports",
        headers={"Authorization": f"Bearer {token}", "DPoP": client.proof("GET", URL, token=token)},
        status=401,
    )
    found = assert_refused(response, 401, "invalid_token", scheme="DPoP")
    assert found["algs"].startswith("ES256")


def test_the_dpop_scheme_with_an_unbound_token_is_refused_rfc9449_7_1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = issuer.token()
    refused_proof(app, token, client.proof("GET", URL, token=token), "invalid_token")


def test_a_proof_by_another_key_than_the_bound_one_is_refused_rfc9449_7_1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    other = DPoPKey()
    found = refused_proof(app, token, other.proof("GET", URL, token=token), "invalid_token")
    assert "binding" in found["error_description"]


def test_the_dpop_scheme_without_a_proof_is_refused_rfc9449_7_1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    refused_proof(app, bound_token(issuer, client), None, "invalid_dpop_proof")


def test_two_dpop_headers_are_refused_rfc9449_4_3(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    proof = client.proof("GET", URL, token=token)
    refused_proof(app, token, f"{proof}, {proof}", "invalid_dpop_proof")


# -- RFC 9449 §4.3: the proof ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("typ", {"header": {"typ": "jwt"}}),
        ("alg", {"header": {"alg": "HS256"}}),
        ("htm", {"htm": "POST"}),
        ("htu_path", {"htu": "https://api.example/api/other"}),
        ("htu_host", {"htu": "https://evil.example/api/reports"}),
        ("iat_old", {"iat": NOW - 301}),
        ("iat_future", {"iat": NOW + 301}),
        ("no_jti", {"drop": ("jti",)}),
        ("no_ath", {"drop": ("ath",)}),
        ("ath", {"ath": b64(b"x" * 32)}),
    ],
)
def test_a_proof_failing_one_check_is_invalid_dpop_proof_rfc9449_4_3(
    app: TestApp, issuer: Issuer, client: DPoPKey, case: str, kwargs: dict[str, Any]
) -> None:
    token = bound_token(issuer, client)
    htu = kwargs.pop("htu", URL)
    htm = kwargs.pop("htm", "GET")
    proof = client.proof(htm, htu, token=token, **kwargs)
    refused_proof(app, token, proof, "invalid_dpop_proof")


def test_a_proof_with_a_private_jwk_is_refused_rfc9449_4_3(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    d = client.key.private_numbers().private_value.to_bytes(32, "big")
    proof = client.proof("GET", URL, token=token, header={"jwk": {**client.jwk, "d": b64(d)}})
    refused_proof(app, token, proof, "invalid_dpop_proof")


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused_rfc9449_4_3(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    proof = client.proof("GET", URL, token=token, key=ec_key())
    refused_proof(app, token, proof, "invalid_dpop_proof")


def test_a_proof_for_another_access_token_is_refused_rfc9449_7_1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    other = bound_token(issuer, client)
    refused_proof(app, token, client.proof("GET", URL, token=other), "invalid_dpop_proof")


def test_a_malformed_proof_is_refused_rfc9449_4_3(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    refused_proof(app, token, "not-a-jwt", "invalid_dpop_proof")
    head = b64(compact_json({"typ": "dpop+jwt", "alg": "none", "jwk": client.jwk}))
    body = b64(compact_json({"jti": "x", "htm": "GET", "htu": URL, "iat": NOW}))
    refused_proof(app, token, f"{head}.{body}.", "invalid_dpop_proof")


# -- RFC 9449 §11.1: replay, claimed after verification (DESIGN.md rule 7) ------------------


def test_a_replayed_proof_is_refused_rfc9449_11_1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    proof = client.proof("GET", URL, token=token)
    app.get("/api/reports", headers=dpop_headers(token, proof), status=200)
    found = refused_proof(app, token, proof, "invalid_dpop_proof")
    assert "already been used" in found["error_description"]


class SpyReplayStore:
    def __init__(self) -> None:
        self.inner = MemoryReplayStore(FrozenClock(NOW))
        self.calls: list[tuple[str, int]] = []

    def check_and_record(self, key: str, expires_at: int) -> bool:
        self.calls.append((key, expires_at))
        return self.inner.check_and_record(key, expires_at)


def test_the_replay_key_is_claimed_only_after_the_token_verified_rule7(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    spy = SpyReplayStore()
    app = make_app(
        tmp_path, issuer, configure=lambda config: config.set_attesto_resource_stores(replay=spy)
    )
    expired = bound_token(issuer, client, exp=NOW - 600)
    refused_proof(app, expired, client.proof("GET", URL, token=expired), "invalid_token")
    wrong_key = bound_token(issuer, DPoPKey())
    refused_proof(app, wrong_key, client.proof("GET", URL, token=wrong_key), "invalid_token")
    assert spy.calls == []
    token = bound_token(issuer, client)
    app.get("/api/reports", headers=dpop_headers(token, client.proof("GET", URL, token=token)))
    assert len(spy.calls) == 1
    assert spy.calls[0][1] >= NOW + 60  # kept as long as the proof could be accepted


def test_a_full_replay_store_fails_closed_d18(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    full = MemoryReplayStore(FrozenClock(NOW), max_entries=1)
    app = make_app(
        tmp_path, issuer, configure=lambda config: config.set_attesto_resource_stores(replay=full)
    )
    token = bound_token(issuer, client)
    app.get("/api/reports", headers=dpop_headers(token, client.proof("GET", URL, token=token)))
    refused_proof(app, token, client.proof("GET", URL, token=token), "invalid_dpop_proof")


def _sql_app(tmp_path: Path, issuer: Issuer, url: str) -> TestApp:
    from pyramid_attesto.storage.engine import make_engine
    from pyramid_attesto.storage.tables import metadata

    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return make_app(tmp_path, issuer, {"attesto.replay_store": url})


def _assert_shared_replay(tmp_path: Path, issuer: Issuer, client: DPoPKey, url: str) -> None:
    one = _sql_app(tmp_path, issuer, url)
    two = make_app(tmp_path, issuer, {"attesto.replay_store": url})
    token = bound_token(issuer, client)
    proof = client.proof("GET", URL, token=token)
    try:
        one.get("/api/reports", headers=dpop_headers(token, proof), status=200)
        # The second node sees the first node's claim: the store is shared (RFC 9449 §11.1).
        refused_proof(two, token, proof, "invalid_dpop_proof")
    finally:
        for app in (one, two):
            app.app.registry["attesto.resource_engine"].dispose()


def test_the_sql_replay_store_is_shared_between_app_instances_sqlite(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    _assert_shared_replay(tmp_path, issuer, client, f"sqlite:///{tmp_path / 'replay.db'}")


@pytest.mark.postgresql
def test_the_sql_replay_store_is_shared_between_app_instances_postgresql(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    url = os.environ.get("ATTESTO_TEST_POSTGRESQL_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("ATTESTO_TEST_POSTGRESQL_URL is required under CI")
        pytest.skip("ATTESTO_TEST_POSTGRESQL_URL is not set")
    _assert_shared_replay(tmp_path, issuer, client, url)


# -- RFC 9449 §9: resource-server nonces -------------------------------------------------------


def test_a_resource_server_nonce_is_demanded_then_accepted_rfc9449_9(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.dpop.resource_nonce": "true"})
    token = bound_token(issuer, client)
    response = app.get(
        "/api/reports",
        headers=dpop_headers(token, client.proof("GET", URL, token=token)),
        status=401,
    )
    assert_refused(response, 401, "use_dpop_nonce", scheme="DPoP")
    nonce = response.headers["DPoP-Nonce"]
    assert [s for s, _ in challenge_params(response.headers["WWW-Authenticate"])] == ["DPoP"]
    proof = client.proof("GET", URL, token=token, nonce=nonce)
    app.get("/api/reports", headers=dpop_headers(token, proof), status=200)
    bad = client.proof("GET", URL, token=token, nonce="forged-nonce")
    response = app.get("/api/reports", headers=dpop_headers(token, bad), status=401)
    assert_refused(response, 401, "use_dpop_nonce", scheme="DPoP")


def test_nonces_from_a_shared_secret_work_on_every_node_rfc9449_9(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    settings = {"attesto.dpop.resource_nonce": "true", "attesto.dpop.nonce_secret": "s" * 40}
    one = make_app(tmp_path, issuer, settings)
    two = make_app(tmp_path, issuer, settings)
    token = bound_token(issuer, client)
    first = one.get(
        "/api/reports",
        headers=dpop_headers(token, client.proof("GET", URL, token=token)),
        status=401,
    )
    proof = client.proof("GET", URL, token=token, nonce=first.headers["DPoP-Nonce"])
    two.get("/api/reports", headers=dpop_headers(token, proof), status=200)


# -- dpop_bound_access_tokens_required ------------------------------------------------------


def test_a_dpop_only_resource_refuses_bearer_and_offers_only_dpop_rfc9728_2(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.dpop.required": "true"})
    response = app.get(
        "/api/reports", headers={"Authorization": f"Bearer {issuer.token()}"}, status=401
    )
    assert_refused(response, 401, "invalid_token", scheme="DPoP")
    response = app.get("/api/reports", status=401)
    assert [s for s, _ in challenge_params(response.headers["WWW-Authenticate"])] == ["DPoP"]
    metadata = app.get("/.well-known/oauth-protected-resource/api").json
    assert metadata["dpop_bound_access_tokens_required"] is True
    token = bound_token(issuer, client)
    app.get("/api/reports", headers=dpop_headers(token, client.proof("GET", URL, token=token)))


# -- the canonical URL (DESIGN.md rule 1) ----------------------------------------------------


def test_a_forged_host_header_does_not_move_htu_rule1(
    app: TestApp, issuer: Issuer, client: DPoPKey
) -> None:
    token = bound_token(issuer, client)
    proof = client.proof("GET", "https://evil.example/api/reports", token=token)
    response = app.get(
        "/api/reports",
        headers={**dpop_headers(token, proof), "Host": "evil.example"},
        extra_environ={"HTTP_HOST": "evil.example", "HTTP_X_FORWARDED_HOST": "evil.example"},
        status=401,
    )
    assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")


def test_a_trusted_proxy_forwarded_host_sets_htu_rule1(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.trusted_proxies": "10.0.0.0/8"})
    token = bound_token(issuer, client)
    htu = "https://edge.example/prefix/api/reports"
    environ = {
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_X_FORWARDED_HOST": "edge.example",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_PREFIX": "/prefix",
    }
    headers = dpop_headers(token, client.proof("GET", htu, token=token))
    app.get("/api/reports", headers=headers, extra_environ=environ, status=200)
    # The same headers from a peer outside trusted_proxies change nothing.
    headers = dpop_headers(token, client.proof("GET", htu, token=token))
    response = app.get(
        "/api/reports",
        headers=headers,
        extra_environ={**environ, "REMOTE_ADDR": "192.0.2.1"},
        status=401,
    )
    assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")


def test_a_configured_public_url_is_the_htu_base_rule1(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.public_url": "https://public.example/svc"})
    token = bound_token(issuer, client)
    proof = client.proof("GET", "https://public.example/svc/api/reports", token=token)
    app.get("/api/reports", headers=dpop_headers(token, proof), status=200)


def test_rsa_proofs_are_accepted_rfc9449_4_2(app: TestApp, issuer: Issuer) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from resource_support import rsa_jwk, thumbprint

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = rsa_jwk(key)
    token = issuer.token(cnf={"jkt": thumbprint(jwk)})
    from resource_support import ath

    proof = sign(
        key,
        {"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk},
        {"jti": "r1", "htm": "GET", "htu": URL, "iat": NOW, "ath": ath(token)},
    )
    app.get("/api/reports", headers=dpop_headers(token, proof), status=200)


def replay_store_factory(clock: Any) -> MemoryReplayStore:
    return MemoryReplayStore(clock)


def test_the_replay_store_can_be_named_by_a_dotted_factory(
    tmp_path: Path, issuer: Issuer, client: DPoPKey
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.replay_store": f"{__name__}:replay_store_factory"})
    token = bound_token(issuer, client)
    proof = client.proof("GET", URL, token=token)
    app.get("/api/reports", headers=dpop_headers(token, proof), status=200)
    refused_proof(app, token, proof, "invalid_dpop_proof")
    with pytest.raises(Exception, match="replay_store"):
        make_app(tmp_path, issuer, {"attesto.replay_store": f"{__name__}:URL"})
