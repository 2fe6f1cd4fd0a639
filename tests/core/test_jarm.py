"""Authorization responses in every response mode; JARM responses checked with joserfc and
the published JWK Set, independently of our own JWT code."""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from pyramid_attesto.core.authorization import (
    RedirectableAuthorizationError,
    ResponseMode,
    ResponseTarget,
)
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import AccessDenied, InvalidScope, InvalidToken
from pyramid_attesto.core.idtoken import IDTokenVerifier
from pyramid_attesto.core.jarm import (
    JARM_TYP,
    MAX_JARM_LIFETIME,
    FormPostResponse,
    JARMEncoder,
    RedirectResponse,
    error_response,
    respond,
    success_parameters,
    success_response,
)
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.tokens import AccessTokenVerifier

ISSUER = "https://as.example"
NOW = 1_700_000_000
KEYSTORE = StaticKeystore(
    [private_signer(generate_key(alg)) for alg in ("ES256", "RS256", "PS256", "EdDSA")]
)
CODE = "SplxlOBeZQQYbYS6WxSbIA"


def target(mode: ResponseMode = "query", **changes: Any) -> ResponseTarget:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": "s6BhdRkqt3",
        "redirect_uri": "https://client.example/cb",
        "response_mode": mode,
        "state": "xyz",
    }
    values.update(changes)
    return ResponseTarget(**values)


def encoder(lifetime: int = 300) -> JARMEncoder:
    return JARMEncoder(KEYSTORE, issuer=ISSUER, clock=FrozenClock(NOW), lifetime=lifetime)


def decode_independently(token: str, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """joserfc and the public JWK Set only."""
    keys = KeySet.import_key_set(dict(KEYSTORE.jwks()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc flags the EdDSA name
        decoded = jwt.decode(token, keys, algorithms=[alg])
    return dict(decoded.header), dict(decoded.claims)


def query_of(response: object) -> dict[str, list[str]]:
    assert isinstance(response, RedirectResponse)
    return parse_qs(urlsplit(response.location).query, strict_parsing=True)


# -- plain modes -------------------------------------------------------------------------------


def test_query_success_carries_iss_rfc9207_2() -> None:
    response = success_response(target(), CODE)
    assert response == RedirectResponse(
        "https://client.example/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz&iss=https%3A%2F%2Fas.example"
    )


def test_query_keeps_the_registered_query_rfc6749_3_1_2() -> None:
    response = success_response(target(redirect_uri="https://client.example/cb?tenant=a"), CODE)
    assert query_of(response) == {
        "tenant": ["a"],
        "code": [CODE],
        "state": ["xyz"],
        "iss": [ISSUER],
    }


def test_no_state_no_state_rfc6749_4_1_2() -> None:
    assert success_parameters(target(state=None), CODE) == {"code": CODE, "iss": ISSUER}


def test_fragment_mode_multiple_response_types_2_1() -> None:
    response = success_response(target("fragment"), CODE)
    assert isinstance(response, RedirectResponse)
    base, _, fragment = response.location.partition("#")
    assert base == "https://client.example/cb"
    assert parse_qs(fragment) == {"code": [CODE], "state": ["xyz"], "iss": [ISSUER]}


def test_form_post_mode_form_post_response_mode_2() -> None:
    response = success_response(target("form_post"), CODE)
    assert isinstance(response, FormPostResponse)
    assert response.action == "https://client.example/cb"
    assert dict(response.fields) == {"code": CODE, "state": "xyz", "iss": ISSUER}
    assert CODE not in repr(response)  # codes stay out of logs (DESIGN.md rule 4)


def test_error_response_carries_state_and_iss_rfc9207_2() -> None:
    error = RedirectableAuthorizationError(InvalidScope("the scope is unknown"), target())
    assert query_of(error_response(error)) == {
        "error": ["invalid_scope"],
        "error_description": ["the scope is unknown"],
        "state": ["xyz"],
        "iss": [ISSUER],
    }


def test_jarm_mode_without_an_encoder_is_a_bug_design_d24() -> None:
    with pytest.raises(ValueError, match="JARM"):
        success_response(target("query.jwt"), CODE)


# -- JARM ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_jarm_success_verifies_with_joserfc_jarm_2_1(alg: str) -> None:
    response = success_response(target("query.jwt"), CODE, jarm=encoder(), alg=alg)  # type: ignore[arg-type]
    params = query_of(response)
    assert list(params) == ["response"]
    header, claims = decode_independently(params["response"][0], alg)
    assert header["alg"] == alg
    assert header["typ"] == JARM_TYP
    assert header["kid"] == KEYSTORE.signer(alg).kid  # type: ignore[arg-type]
    assert claims == {
        "iss": ISSUER,
        "aud": "s6BhdRkqt3",
        "exp": NOW + 300,
        "code": CODE,
        "state": "xyz",
    }


def test_jarm_uses_the_keystore_default_algorithm_jarm_3() -> None:
    response = success_response(target("query.jwt"), CODE, jarm=encoder())
    header, _ = decode_independently(query_of(response)["response"][0], "ES256")
    assert header["alg"] == "ES256"


def test_jarm_error_response_jarm_2_2() -> None:
    error = RedirectableAuthorizationError(AccessDenied("the user said no"), target("fragment.jwt"))
    response = error_response(error, jarm=encoder())
    assert isinstance(response, RedirectResponse)
    base, _, fragment = response.location.partition("#")
    assert base == "https://client.example/cb"
    token = parse_qs(fragment)["response"][0]
    _, claims = decode_independently(token, "ES256")
    assert claims == {
        "iss": ISSUER,
        "aud": "s6BhdRkqt3",
        "exp": NOW + 300,
        "error": "access_denied",
        "error_description": "the user said no",
        "state": "xyz",
    }


def test_jarm_form_post_jarm_2_3_3() -> None:
    response = success_response(target("form_post.jwt"), CODE, jarm=encoder(lifetime=60))
    assert isinstance(response, FormPostResponse)
    assert list(response.fields) == ["response"]
    _, claims = decode_independently(response.fields["response"], "ES256")
    assert claims["exp"] == NOW + 60
    assert claims["code"] == CODE


def test_jarm_lifetime_is_short_jarm_2_1() -> None:
    for bad in (0, MAX_JARM_LIFETIME + 1):
        with pytest.raises(ValueError, match="lifetime"):
            encoder(lifetime=bad)


def test_a_jarm_response_is_not_an_access_token_rfc8725_3_11() -> None:
    token = encoder().encode(target("query.jwt"), {"code": CODE})
    verifier = AccessTokenVerifier(
        KEYSTORE, issuer=ISSUER, audience="s6BhdRkqt3", clock=FrozenClock(NOW)
    )
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert info.value.reason == "wrong_typ"


def test_a_jarm_response_is_not_an_id_token_rfc8725_3_11() -> None:
    token = encoder().encode(target("query.jwt"), {"code": CODE})
    verifier = IDTokenVerifier(KEYSTORE, issuer=ISSUER, clock=FrozenClock(NOW))
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token, client_id="s6BhdRkqt3")
    assert info.value.reason == "missing_claim"


def test_response_parameters_cannot_override_the_jarm_claims_jarm_2_1() -> None:
    token = encoder().encode(target("query.jwt"), {"iss": "x", "aud": "y", "exp": "z", "code": "c"})
    _, claims = decode_independently(token, "ES256")
    assert (claims["iss"], claims["aud"], claims["exp"]) == (ISSUER, "s6BhdRkqt3", NOW + 300)


def test_respond_plain_query_with_explicit_parameters() -> None:
    response = respond(target(), {"error": "login_required", "iss": ISSUER})
    assert query_of(response) == {"error": ["login_required"], "iss": [ISSUER]}
