"""Bearer tokens at the resource server: RFC 6750 §2-§3, RFC 9068 §4, RFC 8707, RFC 9700 §4.3.2.

Every token here is signed by hand with ``cryptography`` (tests/pyramid/resource_support.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from resource_support import (
    ISSUER,
    METADATA_URL,
    NOW,
    RESOURCE,
    Issuer,
    assert_refused,
    b64,
    challenge_params,
    compact_json,
    make_app,
)
from webtest import TestApp

from pyramid_attesto.storage.memory import MemoryRevokedAccessTokenStore


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def app(tmp_path: Path, issuer: Issuer) -> TestApp:
    return make_app(tmp_path, issuer)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- success ------------------------------------------------------------------------------


def test_a_valid_bearer_token_reaches_the_view_with_its_identity(
    app: TestApp, issuer: Issuer
) -> None:
    response = app.get("/api/reports", headers=bearer(issuer.token()))
    assert response.json == {
        "sub": "user-1",
        "client_id": "client-1",
        "kind": "user",
        "scopes": ["read:reports", "profile"],
        "token_type": "Bearer",
    }


def test_a_2xx_response_never_carries_www_authenticate(app: TestApp, issuer: Issuer) -> None:
    response = app.get("/api/reports", headers=bearer(issuer.token()))
    assert response.status_int == 200
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_scheme_is_case_insensitive_rfc9110_11_1(
    app: TestApp, issuer: Issuer, scheme: str
) -> None:
    app.get("/api/reports", headers={"Authorization": f"{scheme} {issuer.token()}"}, status=200)


def test_a_wildcard_grant_covers_a_catalog_scope_rule9(app: TestApp, issuer: Issuer) -> None:
    token = issuer.token(scope="read:* write:reports")
    app.get("/api/reports", headers=bearer(token), status=200)
    app.get("/api/admin", headers=bearer(token), status=200)


def test_a_leeway_of_30_seconds_tolerates_clock_skew_rfc9068_4(
    app: TestApp, issuer: Issuer
) -> None:
    app.get("/api/reports", headers=bearer(issuer.token(exp=NOW - 20)), status=200)
    app.get("/api/reports", headers=bearer(issuer.token(nbf=NOW + 20)), status=200)


def test_a_view_without_permission_sees_no_identity_for_a_bad_token(
    app: TestApp, issuer: Issuer
) -> None:
    assert app.get("/api/public", headers=bearer(issuer.token(aud="x"))).json == {"identity": False}
    assert app.get("/api/public", headers=bearer(issuer.token())).json == {"identity": True}


# -- RFC 6750 §3.1: no credentials, malformed requests --------------------------------------


def test_no_credentials_get_a_challenge_without_error_rfc6750_3_1(app: TestApp) -> None:
    response = app.get("/api/reports", status=401)
    assert_refused(response, 401, None, scope="read:reports")
    challenges = dict(challenge_params(response.headers["WWW-Authenticate"]))
    # RFC 9449 §7.2: both accepted schemes are offered, DPoP with its algorithms.
    assert set(challenges) == {"Bearer", "DPoP"}
    assert challenges["DPoP"]["algs"].split()[0] == "ES256"
    assert "error" not in challenges["DPoP"]
    assert challenges["DPoP"]["resource_metadata"] == METADATA_URL


def test_another_scheme_is_not_an_oauth_credential_rfc6750_3_1(app: TestApp) -> None:
    response = app.get("/api/reports", headers={"Authorization": "Basic dXNlcjpwdw=="}, status=401)
    assert_refused(response, 401, None)


def test_a_bearer_field_without_token_is_invalid_request_rfc6750_3_1(app: TestApp) -> None:
    response = app.get("/api/reports", headers={"Authorization": "Bearer "}, status=400)
    assert_refused(response, 400, "invalid_request")


def test_two_tokens_in_one_field_are_invalid_request_rfc6750_3_1(
    app: TestApp, issuer: Issuer
) -> None:
    # Two Authorization fields folded into one by an intermediary look like this.
    value = f"Bearer {issuer.token()}, Bearer {issuer.token()}"
    response = app.get("/api/reports", headers={"Authorization": value}, status=400)
    assert_refused(response, 400, "invalid_request")


def test_a_token_outside_the_b64token_syntax_is_invalid_request_rfc6750_2_1(
    app: TestApp,
) -> None:
    response = app.get("/api/reports", headers={"Authorization": 'Bearer a"b'}, status=400)
    assert_refused(response, 400, "invalid_request")


def test_a_query_string_token_is_never_accepted_rfc9700_4_3_2(app: TestApp, issuer: Issuer) -> None:
    response = app.get(f"/api/reports?access_token={issuer.token()}", status=400)
    found = assert_refused(response, 400, "invalid_request")
    assert "query" in found["error_description"]
    # ... not even beside a valid header.
    response = app.get(
        f"/api/reports?x=1&access_token={issuer.token()}",
        headers=bearer(issuer.token()),
        status=400,
    )
    assert_refused(response, 400, "invalid_request")


def test_a_form_body_token_is_ignored_by_default_rfc6750_2_2(app: TestApp, issuer: Issuer) -> None:
    response = app.post("/api/reports", {"access_token": issuer.token()}, status=401)
    assert_refused(response, 401, None)


def test_a_form_body_token_is_accepted_when_enabled_rfc6750_2_2(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.bearer_methods": "header body"})
    app.post("/api/reports", {"access_token": issuer.token()}, status=200)
    # Never on GET, and never two methods at once (RFC 6750 §3.1 invalid_request).
    response = app.post(
        "/api/reports", {"access_token": issuer.token()}, headers=bearer(issuer.token()), status=400
    )
    assert_refused(response, 400, "invalid_request")
    response = app.post(
        "/api/reports",
        "access_token=a&access_token=b",
        content_type="application/x-www-form-urlencoded",
        status=400,
    )
    assert_refused(response, 400, "invalid_request")
    metadata = app.get("/.well-known/oauth-protected-resource/api").json
    assert metadata["bearer_methods_supported"] == ["header", "body"]


# -- RFC 6750 §3.1 / RFC 9068 §4: invalid tokens --------------------------------------------


def _refused_token(app: TestApp, token: str, reason_word: str | None = None) -> dict[str, str]:
    response = app.get("/api/reports", headers=bearer(token), status=401)
    found = assert_refused(response, 401, "invalid_token", scope="read:reports")
    assert token not in response.text
    return found


def test_a_bad_signature_is_invalid_token_rfc6750_3_1(app: TestApp, issuer: Issuer) -> None:
    token = issuer.token()
    head, payload, signature = token.split(".")
    _refused_token(app, f"{head}.{payload}.{signature[::-1]}")
    # A valid signature by another key under the same kid.
    _refused_token(app, Issuer(kid=issuer.kid).token())


def test_an_expired_token_is_invalid_token_rfc9068_4(app: TestApp, issuer: Issuer) -> None:
    found = _refused_token(app, issuer.token(exp=NOW - 31))
    assert "expired" in found["error_description"]


def test_a_token_not_yet_valid_is_invalid_token_rfc9068_4(app: TestApp, issuer: Issuer) -> None:
    _refused_token(app, issuer.token(nbf=NOW + 31))


def test_another_issuer_is_invalid_token_rfc9068_4(app: TestApp, issuer: Issuer) -> None:
    _refused_token(app, issuer.token(iss="https://evil.example"))
    _refused_token(app, issuer.token(iss=ISSUER + "/"))


@pytest.mark.parametrize(
    "aud",
    [
        "https://other.example/api",
        "https://api.example/api/",  # compared exactly: rule 8
        "https://API.example/api",
        ["https://other.example"],
        [],
    ],
)
def test_a_token_for_another_resource_is_invalid_token_rfc8707_rfc9068_4(
    app: TestApp, issuer: Issuer, aud: Any
) -> None:
    _refused_token(app, issuer.token(aud=aud))


def test_a_token_without_audience_is_invalid_token_rfc9068_4(app: TestApp, issuer: Issuer) -> None:
    _refused_token(app, issuer.token(drop=("aud",)))


@pytest.mark.parametrize("typ", ["JWT", "dpop+jwt", "id_token+jwt", None])
def test_a_jwt_that_is_not_an_access_token_is_invalid_token_rfc9068_4_rfc8725_3_11(
    app: TestApp, issuer: Issuer, typ: str | None
) -> None:
    _refused_token(app, issuer.token(header={"typ": typ}))


def test_alg_none_is_invalid_token_rfc8725_3_1(app: TestApp, issuer: Issuer) -> None:
    head = b64(compact_json({"alg": "none", "typ": "at+jwt", "kid": issuer.kid}))
    payload = issuer.token().split(".")[1]
    _refused_token(app, f"{head}.{payload}.")


def test_hs256_keyed_with_the_public_key_is_invalid_token_rfc8725_2_1(
    app: TestApp, issuer: Issuer
) -> None:
    import hmac as _hmac

    head = b64(compact_json({"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid}))
    payload = issuer.token().split(".")[1]
    secret = compact_json(issuer.public_jwk)
    mac = _hmac.new(secret, f"{head}.{payload}".encode(), "sha256").digest()
    _refused_token(app, f"{head}.{payload}.{b64(mac)}")


def test_an_unknown_kid_is_invalid_token_rfc7515_4_1_4(app: TestApp) -> None:
    _refused_token(app, Issuer(kid="unknown").token())


@pytest.mark.parametrize("claim", ["sub", "client_id", "jti", "exp", "iat", "iss"])
def test_a_missing_required_claim_is_invalid_token_rfc9068_2_2(
    app: TestApp, issuer: Issuer, claim: str
) -> None:
    _refused_token(app, issuer.token(drop=(claim,)))


def test_a_malformed_jwt_is_invalid_token_rfc6750_3_1(app: TestApp) -> None:
    _refused_token(app, "abc.def")
    _refused_token(app, "a.b.c.d")
    _refused_token(app, "x" * 20)


def test_a_revoked_token_is_invalid_token_when_the_denylist_is_on_rfc7009_2(
    tmp_path: Path, issuer: Issuer
) -> None:
    from pyramid_attesto.core.clock import FrozenClock

    denylist = MemoryRevokedAccessTokenStore(FrozenClock(NOW))
    app = make_app(
        tmp_path,
        issuer,
        {"attesto.revocation_check": "true"},
        configure=lambda config: config.set_attesto_resource_stores(revoked_access_tokens=denylist),
    )
    token = issuer.token(jti="revoked-1")
    app.get("/api/reports", headers=bearer(token), status=200)
    denylist.add("revoked-1", NOW + 600)
    found = _refused_token(app, token)
    assert "revoked" in found["error_description"]


def test_the_denylist_is_not_consulted_by_default(tmp_path: Path, issuer: Issuer) -> None:
    from pyramid_attesto.core.clock import FrozenClock

    denylist = MemoryRevokedAccessTokenStore(FrozenClock(NOW))
    denylist.add("revoked-1", NOW + 600)
    app = make_app(
        tmp_path,
        issuer,
        configure=lambda config: config.set_attesto_resource_stores(revoked_access_tokens=denylist),
    )
    app.get("/api/reports", headers=bearer(issuer.token(jti="revoked-1")), status=200)


# -- RFC 6750 §3.1: insufficient scope --------------------------------------------------------


def test_a_missing_scope_is_403_insufficient_scope_naming_it_rfc6750_3_1(
    app: TestApp, issuer: Issuer
) -> None:
    response = app.get("/api/reports", headers=bearer(issuer.token(scope="profile")), status=403)
    assert_refused(response, 403, "insufficient_scope", scope="read:reports")
    assert response.json["scope"] == "read:reports"


def test_attesto_scopes_requires_every_scope_rfc6750_3_1(app: TestApp, issuer: Issuer) -> None:
    response = app.get("/api/admin", headers=bearer(issuer.token()), status=403)
    assert_refused(response, 403, "insufficient_scope", scope="read:reports write:reports")
    response = app.get("/api/admin", status=401)
    assert_refused(response, 401, None, scope="read:reports write:reports")


def test_a_wildcard_requirement_is_never_satisfied_rule9(app: TestApp, issuer: Issuer) -> None:
    # The system scope covers catalog scopes only; "read:reports" is in the catalog.
    app.get("/api/reports", headers=bearer(issuer.token(scope="*")), status=200)
    response = app.get("/api/reports", headers=bearer(issuer.token(scope="read")), status=403)
    assert_refused(response, 403, "insufficient_scope", scope="read:reports")


# -- several resources ----------------------------------------------------------------------


def test_several_resources_each_accept_their_audience_rfc8707_rfc9728_3_1(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.resource": f"{RESOURCE}\nhttps://api.example/mcp"})
    app.get("/api/reports", headers=bearer(issuer.token(aud="https://api.example/mcp")), status=200)
    app.get("/api/reports", headers=bearer(issuer.token()), status=200)
    assert app.get("/.well-known/oauth-protected-resource/mcp").json["resource"] == (
        "https://api.example/mcp"
    )
    assert app.get("/.well-known/oauth-protected-resource/api").json["resource"] == RESOURCE
    # The bare well-known URL answers for the first resource (MCP clients fall back to it).
    assert app.get("/.well-known/oauth-protected-resource").json["resource"] == RESOURCE
    app.get("/.well-known/oauth-protected-resource/other", status=404)
    app.get("/.well-known/oauth-protected-resourcex", status=404)
