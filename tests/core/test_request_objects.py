"""Request objects (RFC 9101) under the generic and the FAPI 2.0 Message Signing policies.

Every request object here is signed by hand with `cryptography` (authz_jose_helpers), so a
bug shared by our verifier and joserfc's signer cannot hide."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from authz_jose_helpers import b64, public_jwk, sign
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import ConfigurationError, InvalidRequestObject
from pyramid_attesto.core.request_objects import (
    FAPI_REQUEST_OBJECT_ALGORITHMS,
    RequestObjectPolicy,
    RequestObjectVerifier,
)

ISSUER = "https://as.example"
NOW = 1_700_000_000
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
JWKS = {
    "keys": [
        public_jwk(EC_KEY, "ec"),
        public_jwk(RSA_KEY, "rsa"),
        public_jwk(ED_KEY, "ed"),
    ]
}
CLIENT = Client(
    client_id="s6BhdRkqt3",
    token_endpoint_auth_method="private_key_jwt",
    redirect_uris=["https://client.example/cb"],
    jwks=JWKS,
)
KEYS = {"ES256": (EC_KEY, "ec"), "PS256": (RSA_KEY, "rsa"), "RS256": (RSA_KEY, "rsa")}
KEYS["EdDSA"] = (ED_KEY, "ed")  # type: ignore[assignment]


def claims(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "iss": "s6BhdRkqt3",
        "aud": ISSUER,
        "client_id": "s6BhdRkqt3",
        "response_type": "code",
        "redirect_uri": "https://client.example/cb",
        "scope": "openid",
        "state": "af0ifjsldkj",
        "nbf": NOW - 30,
        "exp": NOW + 300,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def request_object(
    body: Mapping[str, Any] | None = None, *, alg: str = "ES256", **header: Any
) -> str:
    key, kid = KEYS.get(alg, (EC_KEY, "ec"))
    protected = {"alg": alg, "kid": kid, "typ": "oauth-authz-req+jwt", **header}
    protected = {k: v for k, v in protected.items() if v is not None}
    return sign(protected, dict(body if body is not None else claims()), key)


def verifier(policy: RequestObjectPolicy | None = None, **kw: Any) -> RequestObjectVerifier:
    return RequestObjectVerifier(
        policy or RequestObjectPolicy.generic(), issuer=ISSUER, clock=FrozenClock(NOW), **kw
    )


FAPI = RequestObjectPolicy.fapi2_message_signing()


def reason_of(value: str, policy: RequestObjectPolicy | None = None) -> str | None:
    with pytest.raises(InvalidRequestObject) as info:
        verifier(policy).verify(value, CLIENT)
    assert info.value.error == "invalid_request_object"
    return info.value.reason


# -- success -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_fapi_round_trip_fapi2_message_signing_5_3_1(alg: str) -> None:
    body = claims()
    assert verifier(FAPI).verify(request_object(body, alg=alg), CLIENT) == body


def test_generic_round_trip_with_rs256_rfc9101_6_2() -> None:
    body = claims()
    assert verifier().verify(request_object(body, alg="RS256"), CLIENT) == body


@pytest.mark.parametrize(
    "typ", [None, "JWT", "jwt", "oauth-authz-req+jwt", "application/OAUTH-AUTHZ-REQ+JWT"]
)
def test_typ_is_explicit_or_plain_jwt_rfc9101_10_8(typ: str | None) -> None:
    # RFC 7515 §4.1.9: compared case-insensitively, "application/" may be omitted.
    verifier().verify(request_object(typ=typ), CLIENT)


def test_the_generic_policy_checks_optional_claims_only_when_present_rfc9101_4() -> None:
    minimal = {"client_id": "s6BhdRkqt3", "response_type": "code"}
    assert verifier().verify(request_object(minimal), CLIENT) == minimal


def test_aud_may_be_an_array_containing_the_issuer_rfc7519_4_1_3() -> None:
    body = claims(aud=["https://else.example", ISSUER])
    verifier(FAPI).verify(request_object(body), CLIENT)


def test_unknown_kid_refetches_once_for_a_jwks_uri_client_rfc7517_4_5() -> None:
    rotated = Client(
        client_id="s6BhdRkqt3",
        token_endpoint_auth_method="private_key_jwt",
        jwks_uri="https://client.example/jwks",
    )
    calls: list[bool] = []

    def provider(client: Client, *, refresh: bool = False) -> Mapping[str, Any] | None:
        calls.append(refresh)
        return JWKS if refresh else {"keys": [public_jwk(OTHER_KEY, "old")]}

    verifier(jwks=provider).verify(request_object(), rotated)
    assert calls == [False, True]


# -- failures ----------------------------------------------------------------------------------


def test_alg_none_is_refused_rfc9101_6_2() -> None:
    assert reason_of(request_object(alg="none")) == "alg_not_allowed"
    assert reason_of(request_object(alg="none"), FAPI) == "alg_not_allowed"


def test_hs256_is_refused_rfc8725_3_1() -> None:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    value = f"{header}.{b64(json.dumps(claims()).encode())}.{b64(b'x' * 32)}"
    assert reason_of(value) == "alg_not_allowed"


def test_rs256_is_refused_by_fapi_fapi2_security_profile_5_4_1() -> None:
    assert reason_of(request_object(alg="RS256"), FAPI) == "alg_not_allowed"
    assert frozenset({"PS256", "ES256", "EdDSA"}) == FAPI_REQUEST_OBJECT_ALGORITHMS


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (claims(aud="https://other.example"), "wrong_aud"),  # RFC 9101 §4
        (claims(aud=["https://other.example"]), "wrong_aud"),
        (claims(aud=None), "missing_aud"),  # FAPI 2.0 MS §5.3.1
        (claims(iss="someone-else"), "wrong_iss"),  # RFC 9101 §4: iss is the client_id
        (claims(iss=None), "missing_iss"),
        (claims(exp=NOW - 60), "expired"),  # RFC 7519 §4.1.4
        (claims(exp=None), "missing_exp"),  # FAPI 2.0 MS §5.3.1
        (claims(nbf=None), "missing_nbf"),
        (claims(nbf=NOW + 120, exp=NOW + 600), "not_yet_valid"),  # RFC 7519 §4.1.5
        (claims(nbf=NOW - 3601, exp=NOW + 60), "nbf_too_old"),  # FAPI 2.0 MS: 60 minutes
        (claims(nbf=NOW - 60, exp=NOW + 3541), "lifetime_too_long"),  # exp - nbf > 60 min
        (claims(exp="tomorrow"), "malformed_exp"),
        (claims(nbf=True), "malformed_nbf"),
        (claims(iat=NOW + 600), "iat_in_future"),
        (claims(redirect_uri=None), "missing_claim"),
        (claims(response_type=None), "missing_claim"),
    ],
)
def test_fapi_policy_failures_fapi2_message_signing_5_3_1(
    body: dict[str, Any], reason: str
) -> None:
    assert reason_of(request_object(body), FAPI) == reason


def test_a_lifetime_of_exactly_sixty_minutes_is_fine_fapi2_message_signing_5_3_1() -> None:
    verifier(FAPI).verify(request_object(claims(nbf=NOW - 60, exp=NOW + 3540)), CLIENT)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (claims(aud="https://other.example"), "wrong_aud"),
        (claims(iss="someone-else"), "wrong_iss"),
        (claims(exp=NOW - 60), "expired"),
        (claims(nbf=NOW + 120), "not_yet_valid"),
    ],
)
def test_generic_policy_failures_rfc9101_4(body: dict[str, Any], reason: str) -> None:
    assert reason_of(request_object(body)) == reason


def test_generic_policy_accepts_what_fapi_refuses_rfc9101_4() -> None:
    body = claims(aud=None, iss=None, nbf=None, exp=None)
    verifier().verify(request_object(body), CLIENT)


@pytest.mark.parametrize(
    ("typ", "policy"),
    [
        ("at+jwt", RequestObjectPolicy.generic()),  # RFC 8725 §3.11: another kind of JWT
        ("dpop+jwt", RequestObjectPolicy.generic()),
        ("token-introspection+jwt", RequestObjectPolicy.generic()),
        (7, RequestObjectPolicy.generic()),
        ("JWT", RequestObjectPolicy.generic(require_explicit_typ=True)),
        (None, RequestObjectPolicy.generic(require_explicit_typ=True)),
    ],
)
def test_wrong_typ_rfc9101_10_8(typ: Any, policy: RequestObjectPolicy) -> None:
    assert reason_of(request_object(typ=typ), policy) == "wrong_typ"


def test_a_signature_by_another_key_is_refused_rfc9101_6_2() -> None:
    forged = sign({"alg": "ES256", "kid": "ec"}, claims(), OTHER_KEY)
    assert reason_of(forged) == "bad_signature"


def test_a_tampered_payload_is_refused_rfc9101_6_2() -> None:
    header, _, signature = request_object().split(".")
    tampered = b64(json.dumps(claims(scope="openid admin")).encode())
    assert reason_of(f"{header}.{tampered}.{signature}") == "bad_signature"


def test_an_empty_signature_is_refused_rfc9101_6_2() -> None:
    header, payload, _ = request_object().split(".")
    assert reason_of(f"{header}.{payload}.") == "bad_signature"


def test_keys_come_from_the_registration_only_rfc8725_3_10() -> None:
    # An embedded jwk (or jku/x5u/x5c) is not a way to bring one's own key (DESIGN.md D6).
    evil = sign(
        {"alg": "ES256", "jwk": public_jwk(OTHER_KEY, "x"), "jku": "https://evil.example/k"},
        claims(),
        OTHER_KEY,
    )
    assert reason_of(evil) == "bad_signature"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a.b.c.d.e", "encrypted"),  # JWE (RFC 7516) is not supported
        ("not a jwt", "malformed"),
        ("a.b", "malformed"),
        ("YQ.YQ.YQ", "malformed"),  # not JSON
        ("e30.e30=.YQ", "malformed"),  # padding is not base64url
        ("x" * 70000, "too_large"),  # DESIGN.md D6: capped before decoding
    ],
)
def test_malformed_request_objects_rfc9101_6_2(value: str, reason: str) -> None:
    assert reason_of(value) == reason


def test_duplicate_members_are_refused_rfc7519_4() -> None:
    payload = b'{"client_id":"s6BhdRkqt3","client_id":"other"}'
    assert reason_of(sign({"alg": "ES256", "kid": "ec"}, payload, EC_KEY)) == "malformed"


def test_an_array_payload_is_refused_rfc7519_7_2() -> None:
    assert reason_of(sign({"alg": "ES256", "kid": "ec"}, b"[1]", EC_KEY)) == "malformed"


def test_crit_is_refused_rfc7515_4_1_11() -> None:
    assert reason_of(request_object(crit=["exp"], exp=1)) == "crit"


def test_a_client_without_keys_rfc9101_6_2() -> None:
    keyless = Client(client_id="s6BhdRkqt3", redirect_uris=["https://client.example/cb"])
    with pytest.raises(InvalidRequestObject) as info:
        verifier().verify(request_object(), keyless)
    assert info.value.reason == "no_client_keys"


def test_a_client_with_broken_keys_rfc9101_6_2() -> None:
    def broken(client: Client, *, refresh: bool = False) -> Mapping[str, Any] | None:
        return {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}

    with pytest.raises(InvalidRequestObject) as info:
        verifier(jwks=broken).verify(request_object(), CLIENT)
    assert info.value.reason == "bad_client_jwks"


def test_a_malformed_kid_rfc7515_4_1_4() -> None:
    assert reason_of(request_object(kid=5)) == "malformed"


@pytest.mark.parametrize(
    "overrides",
    [
        {"algorithms": frozenset()},
        {"algorithms": frozenset({"none"})},
        {"algorithms": frozenset({"HS256"})},
        {"leeway": -1},
        {"max_lifetime": 0},
    ],
)
def test_policy_configuration_errors(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RequestObjectPolicy.generic(**overrides)


def test_policy_advertises_its_algorithms_rfc8414_2() -> None:
    assert FAPI.request_object_signing_alg_values_supported == ["ES256", "EdDSA", "PS256"]


def test_deeply_nested_json_is_malformed_not_a_crash_rfc9101_6_1() -> None:
    """Nesting beyond the parser's recursion limit is ``invalid_request_object``, never an
    escaping RecursionError (a 500)."""
    nested = b"[" * 3000 + b"]" * 3000
    assert reason_of(sign({"alg": "ES256", "kid": "ec"}, nested, EC_KEY)) == "malformed"
    head = b64(b'{"alg":"ES256","x":' + b"[" * 1500 + b"]" * 1500 + b"}")
    assert reason_of(f"{head}.{b64(b'{}')}.{b64(b'x' * 64)}") == "malformed"
