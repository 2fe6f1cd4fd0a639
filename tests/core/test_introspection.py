"""Introspection responses (RFC 7662 §2.2) and the RFC 9701 JWT response, checked with joserfc
and the published JWK Set."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import InvalidToken
from pyramid_attesto.core.idtoken import IDTokenVerifier
from pyramid_attesto.core.introspection import (
    INTROSPECTION_TYP,
    IntrospectionJWTEncoder,
    accepts_jwt_response,
    active_response,
    inactive_response,
    introspect_access_token,
)
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.tokens import (
    AccessToken,
    AccessTokenClaims,
    AccessTokenMinter,
    AccessTokenVerifier,
)

ISSUER = "https://as.example"
RESOURCE = "https://api.example/mcp"
NOW = 1_700_000_000
KEYSTORE = StaticKeystore([private_signer(generate_key(alg)) for alg in ("ES256", "PS256")])
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def access_token(**changes: Any) -> AccessToken:
    clock = FrozenClock(NOW)
    values: dict[str, Any] = {
        "subject": "user:alice",
        "client_id": "s6BhdRkqt3",
        "audience": RESOURCE,
        "scopes": ("read:reports", "profile"),
    }
    values.update(changes)
    minted = AccessTokenMinter(KEYSTORE, issuer=ISSUER, clock=clock).mint(
        AccessTokenClaims(**values)
    )
    verifier = AccessTokenVerifier(KEYSTORE, issuer=ISSUER, audience=RESOURCE, clock=clock)
    return verifier.verify(minted.token)


def test_active_bearer_token_rfc7662_2_2() -> None:
    token = access_token()
    response = introspect_access_token(token, clock=FrozenClock(NOW), username="alice")
    assert response == {
        "active": True,
        "scope": "read:reports profile",
        "client_id": "s6BhdRkqt3",
        "username": "alice",
        "token_type": "Bearer",
        "exp": NOW + 900,
        "iat": NOW,
        "nbf": NOW,
        "sub": "user:alice",
        "aud": RESOURCE,
        "iss": ISSUER,
        "jti": token.jti,
    }


def test_dpop_bound_token_is_of_type_dpop_rfc9449_6_2() -> None:
    response = introspect_access_token(access_token(cnf={"jkt": JKT}), clock=FrozenClock(NOW))
    assert response["token_type"] == "DPoP"
    assert response["cnf"] == {"jkt": JKT}


def test_mtls_bound_token_stays_bearer_rfc8705_3_2() -> None:
    cnf = {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
    response = introspect_access_token(access_token(cnf=cnf), clock=FrozenClock(NOW))
    assert response["token_type"] == "Bearer"
    assert response["cnf"] == cnf


def test_inactive_has_no_other_member_rfc7662_2_2() -> None:
    assert inactive_response() == {"active": False}


@pytest.mark.parametrize("later", [900, 901, 10_000])
def test_a_token_expired_since_verification_is_inactive_rfc7662_2_2(later: int) -> None:
    response = introspect_access_token(access_token(), clock=FrozenClock(NOW + later))
    assert response == {"active": False}


def test_a_malformed_cnf_is_inactive_rfc7662_2_2() -> None:
    token = access_token(cnf={"jkt": JKT})
    broken = AccessToken(**{**token.__dict__, "cnf": {"jkt": 5}})
    assert introspect_access_token(broken, clock=FrozenClock(NOW)) == {"active": False}


def test_a_token_not_yet_valid_is_inactive_rfc7662_2_2() -> None:
    token = access_token()
    early = AccessToken(**{**token.__dict__, "not_before": NOW + 60})
    assert introspect_access_token(early, clock=FrozenClock(NOW)) == {"active": False}


def test_a_refresh_token_response_has_no_token_type_rfc7662_2_2() -> None:
    assert active_response(client_id="c", scopes=("a",), audience=("x", "y")) == {
        "active": True,
        "scope": "a",
        "client_id": "c",
        "aud": ["x", "y"],
    }


def _decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = KeySet.import_key_set(dict(KEYSTORE.jwks()))
    decoded = jwt.decode(token, keys, algorithms=["ES256", "PS256"])
    return dict(decoded.header), dict(decoded.claims)


def test_jwt_response_verifies_with_joserfc_rfc9701_5() -> None:
    response = introspect_access_token(access_token(cnf={"jkt": JKT}), clock=FrozenClock(NOW))
    encoder = IntrospectionJWTEncoder(KEYSTORE, issuer=ISSUER, clock=FrozenClock(NOW + 5))
    header, claims = _decode(encoder.encode(response, audience="rs-client", alg="PS256"))
    assert header["typ"] == INTROSPECTION_TYP
    assert header["alg"] == "PS256"
    assert claims == {
        "iss": ISSUER,
        "aud": "rs-client",
        "iat": NOW + 5,
        "token_introspection": dict(response),
    }
    # RFC 9701 §5: no top-level sub or exp, so it cannot pass for an access token
    assert "sub" not in claims
    assert "exp" not in claims


def test_jwt_response_for_an_inactive_token_rfc9701_5() -> None:
    encoder = IntrospectionJWTEncoder(KEYSTORE, issuer=ISSUER, clock=FrozenClock(NOW))
    _, claims = _decode(encoder.encode(inactive_response(), audience="rs-client"))
    assert claims["token_introspection"] == {"active": False}


def test_jwt_response_is_neither_access_token_nor_id_token_rfc9701_8_1() -> None:
    encoder = IntrospectionJWTEncoder(KEYSTORE, issuer=ISSUER, clock=FrozenClock(NOW))
    token = encoder.encode(inactive_response(), audience=RESOURCE)
    at = AccessTokenVerifier(KEYSTORE, issuer=ISSUER, audience=RESOURCE, clock=FrozenClock(NOW))
    with pytest.raises(InvalidToken) as info:
        at.verify(token)
    assert info.value.reason == "wrong_typ"
    idt = IDTokenVerifier(KEYSTORE, issuer=ISSUER, clock=FrozenClock(NOW))
    with pytest.raises(InvalidToken) as info:
        idt.verify(token, client_id=RESOURCE)
    assert info.value.reason == "wrong_typ"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, False),
        ("", False),
        ("application/json", False),
        ("*/*", False),
        ("application/token-introspection+jwt", True),
        ("application/json;q=0.5, Application/Token-Introspection+JWT", True),
        ("application/token-introspection+jwt; q=0", False),
        ("application/token-introspection+jwt;q=abc", False),
        ("application/token-introspection+jwt;q=0.1", True),
    ],
)
def test_accept_header_rfc9701_4(accept: str | None, expected: bool) -> None:
    assert accepts_jwt_response(accept) is expected
