"""End to end: DPoP at the token endpoint (RFC 9449 §5, §8, §10): bound tokens, the nonce
flow, replay claimed only after the grant verified (DESIGN.md rule 7). Proofs are built with
``cryptography`` alone."""

from __future__ import annotations

import time

from asrv_support import ISSUER, DPoPKey, as_app, basic, stores, verify_access_token

TOKEN = "/oauth/token"
CC = {"grant_type": "client_credentials"}


def test_dpop_bound_access_token_rfc9449_5() -> None:
    app = as_app()
    key = DPoPKey()
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": key.proof()}, status=200)
    assert res.json["token_type"] == "DPoP"
    assert "DPoP-Nonce" not in res.headers
    token = verify_access_token(app, res.json["access_token"])
    assert token.cnf == {"jkt": key.jkt}


def test_replayed_proof_is_invalid_dpop_proof_rfc9449_11_1() -> None:
    app = as_app()
    proof = DPoPKey().proof()
    app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=200)
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=400)
    assert res.json == {
        "error": "invalid_dpop_proof",
        "error_description": "the DPoP proof has already been used",
    }
    assert res.headers["Cache-Control"] == "no-store"


def test_replay_is_not_claimed_for_a_failed_grant_rule7() -> None:
    app = as_app()
    proof = DPoPKey().proof()
    # The client fails to authenticate: the proof must not be recorded ...
    app.post(TOKEN, CC, headers={**basic("svc", "bad"), "DPoP": proof}, status=401)
    # ... nor when the grant fails after authentication.
    bad_scope = {**CC, "scope": "admin"}
    app.post(TOKEN, bad_scope, headers={**basic("svc"), "DPoP": proof}, status=400)
    # So the same proof still works once.
    app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=200)


def test_wrong_htu_is_invalid_dpop_proof_rfc9449_4_3() -> None:
    app = as_app()
    proof = DPoPKey().proof(htu="https://evil.example/oauth/token")
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=400)
    assert res.json["error"] == "invalid_dpop_proof"


def test_htu_is_the_issuer_url_not_the_host_header_rule1() -> None:
    app = as_app()
    proof = DPoPKey().proof(htu="https://attacker.example/oauth/token")
    res = app.post(
        TOKEN,
        CC,
        headers={**basic("svc"), "DPoP": proof},
        extra_environ={"HTTP_HOST": "attacker.example", "wsgi.url_scheme": "https"},
        status=400,
    )
    assert res.json["error"] == "invalid_dpop_proof"


def test_wrong_htm_is_invalid_dpop_proof_rfc9449_4_3() -> None:
    app = as_app()
    proof = DPoPKey().proof(htm="GET")
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=400)
    assert res.json["error"] == "invalid_dpop_proof"


def test_stale_proof_is_invalid_dpop_proof_rfc9449_11_1() -> None:
    app = as_app()
    proof = DPoPKey().proof(iat=int(time.time()) - 3600)
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=400)
    assert res.json["error"] == "invalid_dpop_proof"


def test_garbage_proof_is_invalid_dpop_proof_rfc9449_4_3() -> None:
    app = as_app()
    for proof in ("x", "a.b.c", "x" * 20000, "e30.e30.e30"):
        res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=400)
        assert res.json["error"] == "invalid_dpop_proof"


def test_two_proofs_are_invalid_dpop_proof_rfc9449_4_3() -> None:
    app = as_app()
    key = DPoPKey()
    header = key.proof() + ", " + key.proof()
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": header}, status=400)
    assert res.json["error"] == "invalid_dpop_proof"


def test_client_registered_for_dpop_needs_a_proof_rfc9449_5_2() -> None:
    app = as_app()
    res = app.post(TOKEN, CC, headers=basic("dpop-svc"), status=400)
    assert res.json == {
        "error": "invalid_dpop_proof",
        "error_description": "this client must use DPoP",
    }
    ok = app.post(TOKEN, CC, headers={**basic("dpop-svc"), "DPoP": DPoPKey().proof()})
    assert ok.json["token_type"] == "DPoP"


def test_nonce_flow_rfc9449_8() -> None:
    app = as_app({"attesto.dpop.nonce": "hmac", "attesto.dpop.nonce_secret": "s" * 32})
    key = DPoPKey()
    first = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": key.proof()}, status=400)
    assert first.json["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    assert first.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in first.headers
    second = app.post(
        TOKEN, CC, headers={**basic("svc"), "DPoP": key.proof(nonce=nonce)}, status=200
    )
    assert second.json["token_type"] == "DPoP"
    assert second.headers["DPoP-Nonce"]  # a fresh nonce for the next request (§8.2)


def test_bad_nonce_is_use_dpop_nonce_rfc9449_8() -> None:
    app = as_app({"attesto.dpop.nonce": "hmac", "attesto.dpop.nonce_secret": "s" * 32})
    proof = DPoPKey().proof(nonce="not-a-nonce")
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": proof}, status=400)
    assert res.json["error"] == "use_dpop_nonce"
    assert res.headers["DPoP-Nonce"]


def test_dpop_off_ignores_the_header_and_issues_bearer() -> None:
    app = as_app({"attesto.dpop.enabled": "false"})
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": DPoPKey().proof()}, status=200)
    assert res.json["token_type"] == "Bearer"
    assert ISSUER
    assert stores(app).replay is not None
