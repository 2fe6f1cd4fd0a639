"""RFC 9068 access tokens: round trips for every algorithm, an independent check of what we
mint, rotation, leeway, audiences, and the claim inputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import import_key

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.encoding import b64url_decode, b64url_encode
from pyramid_attesto.core.errors import InvalidRequestObject, InvalidToken
from pyramid_attesto.core.jwt import JWTDecoder, encode_jwt
from pyramid_attesto.core.keys import (
    Algorithm,
    LocalSigner,
    PublicJWK,
    StaticKeystore,
    generate_key,
    private_signer,
)
from pyramid_attesto.core.tokens import (
    AccessTokenClaims,
    AccessTokenMinter,
    AccessTokenVerifier,
    new_jti,
)

ISSUER = "https://as.example.com"
RESOURCE = "https://api.example.com/"
NOW = 1_700_000_000
ALGS: tuple[Algorithm, ...] = ("ES256", "EdDSA", "RS256", "PS256")


@pytest.fixture(scope="module")
def signers() -> dict[str, LocalSigner]:
    return {alg: private_signer(generate_key(alg)) for alg in ALGS}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def _claims(**changes: Any) -> AccessTokenClaims:
    values: dict[str, Any] = {
        "subject": "usr_alice",
        "client_id": "client-1",
        "audience": RESOURCE,
        "scopes": ("read", "write:reports"),
    }
    values.update(changes)
    return AccessTokenClaims(**values)


def _verifier(keystore: StaticKeystore, clock: FrozenClock, **kw: Any) -> AccessTokenVerifier:
    kw.setdefault("audience", RESOURCE)
    return AccessTokenVerifier(keystore, issuer=ISSUER, clock=clock, **kw)


def _verify_with_cryptography(token: str, jwk: PublicJWK) -> None:
    """Check a token's signature without joserfc or our code (RFC 7518 §3, RFC 8037 §3.1)."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    data, signature = f"{header_b64}.{payload_b64}".encode(), b64url_decode(signature_b64)
    alg = jwk["alg"]

    def num(name: str) -> int:
        return int.from_bytes(b64url_decode(jwk[name]), "big")  # type: ignore[literal-required]

    if alg == "ES256":
        key = ec.EllipticCurvePublicNumbers(num("x"), num("y"), ec.SECP256R1()).public_key()
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    elif alg == "EdDSA":
        ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"])).verify(signature, data)
    else:
        rsa_key = rsa.RSAPublicNumbers(num("e"), num("n")).public_key()
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg == "RS256"
            else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        )
        rsa_key.verify(signature, data, pad, hashes.SHA256())


@pytest.mark.parametrize("alg", ALGS)
def test_round_trip_rfc9068_2(
    alg: Algorithm, signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers[alg]])
    minted = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock).mint(_claims())
    header = json.loads(b64url_decode(minted.token.split(".")[0]))
    assert header == {"alg": alg, "typ": "at+jwt", "kid": signers[alg].kid}
    payload = json.loads(b64url_decode(minted.token.split(".")[1]))
    assert payload == {
        "iss": ISSUER,
        "sub": "usr_alice",
        "aud": RESOURCE,
        "exp": NOW + 900,
        "iat": NOW,
        "nbf": NOW,
        "jti": minted.jti,
        "client_id": "client-1",
        "scope": "read write:reports",
    }
    _verify_with_cryptography(minted.token, signers[alg].public_jwk)

    token = _verifier(keystore, clock).verify(minted.token)
    assert (token.subject, token.client_id, token.scopes) == (
        "usr_alice",
        "client-1",
        ("read", "write:reports"),
    )
    assert (token.issuer, token.audience, token.alg, token.kid) == (
        ISSUER,
        (RESOURCE,),
        alg,
        signers[alg].kid,
    )
    assert (token.issued_at, token.expires_at, token.not_before) == (NOW, NOW + 900, NOW)
    assert (minted.issued_at, minted.expires_at, minted.expires_in) == (NOW, NOW + 900, 900)
    assert token.jti == minted.jti
    assert token.cnf is None
    assert token.auth_time is None
    assert token.acr is None
    assert token.amr == ()
    assert token.principal_kind is None


def test_joserfc_reads_what_we_mint(signers: dict[str, LocalSigner], clock: FrozenClock) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    minted = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock).mint(_claims())
    decoded = joserfc_jwt.decode(minted.token, import_key(dict(signers["ES256"].public_jwk)))
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["client_id"] == "client-1"


def test_optional_claims_round_trip_rfc9068_2_2_1(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    claims = _claims(
        cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
        auth_time=NOW - 100,
        acr="urn:mace:incommon:iap:silver",
        amr=("pwd", "otp"),
        principal_kind="user",
        extra={"groups": ["admins"]},
    )
    minted = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock, lifetime=60).mint(claims)
    token = _verifier(keystore, clock).verify(minted.token)
    assert token.cnf == {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
    assert token.auth_time == NOW - 100
    assert token.acr == "urn:mace:incommon:iap:silver"
    assert token.amr == ("pwd", "otp")
    assert token.principal_kind == "user"
    assert token.claims["groups"] == ["admins"]
    assert token.expires_at == NOW + 60
    with pytest.raises(TypeError):
        token.claims["sub"] = "usr_mallory"  # type: ignore[index]


def test_no_scope_means_no_scope_claim(signers: dict[str, LocalSigner], clock: FrozenClock) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    minted = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock).mint(_claims(scopes=()))
    assert "scope" not in json.loads(b64url_decode(minted.token.split(".")[1]))
    assert _verifier(keystore, clock).verify(minted.token).scopes == ()


def test_jti_has_128_random_bits_rfc9068_2_2() -> None:
    jtis = {new_jti() for _ in range(1000)}
    assert len(jtis) == 1000
    assert all(len(b64url_decode(j)) == 16 for j in jtis)


def test_minted_token_repr_hides_the_token(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    minted = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock).mint(_claims())
    assert minted.token not in repr(minted)
    assert minted.token.split(".")[2] not in repr(minted)


def test_the_minter_uses_the_configured_algorithm(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers["ES256"], signers["PS256"]])
    minter = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock, algorithm="PS256")
    token = _verifier(keystore, clock).verify(minter.mint(_claims()).token)
    assert token.alg == "PS256"


# --- rotation (DESIGN.md D5) ----------------------------------------------------------------


def test_a_retired_but_published_key_still_verifies_then_removal_refuses_it(
    clock: FrozenClock,
) -> None:
    old, new = (private_signer(generate_key("ES256")) for _ in range(2))
    before = StaticKeystore([old])
    token = AccessTokenMinter(before, issuer=ISSUER, clock=clock).mint(_claims()).token

    # Step 1: the new key is published ahead of use; the old one still signs.
    step1 = StaticKeystore([old], published=[new.public_jwk])
    assert _verifier(step1, clock).verify(token).kid == old.kid
    # Step 2: the new key signs; the old one stays published until its tokens expire.
    step2 = StaticKeystore([new], published=[old.public_jwk])
    assert _verifier(step2, clock).verify(token).kid == old.kid
    fresh = AccessTokenMinter(step2, issuer=ISSUER, clock=clock).mint(_claims()).token
    assert _verifier(step1, clock).verify(fresh).kid == new.kid  # a lagging node verifies
    # Step 3: the old key is removed.
    step3 = StaticKeystore([new])
    with pytest.raises(InvalidToken) as info:
        _verifier(step3, clock).verify(token)
    assert info.value.reason == "unknown_kid"


# --- time, audience, algorithms ---------------------------------------------------------------


def test_expiry_allows_the_leeway_and_no_more_rfc7519_4_1_4(
    signers: dict[str, LocalSigner],
) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    clock = FrozenClock(NOW)
    token = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock, lifetime=60).mint(_claims())
    verifier = _verifier(keystore, clock, leeway=30)
    clock.set(NOW + 60 + 29)
    assert verifier.verify(token.token).subject == "usr_alice"
    clock.set(NOW + 60 + 30)
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token.token)
    assert info.value.reason == "expired"


def test_a_token_from_a_clock_ahead_within_leeway_is_accepted_rfc7519_4_1_5(
    signers: dict[str, LocalSigner],
) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    token = (
        AccessTokenMinter(keystore, issuer=ISSUER, clock=FrozenClock(NOW + 20))
        .mint(_claims())
        .token
    )
    assert _verifier(keystore, FrozenClock(NOW)).verify(token).not_before == NOW + 20
    with pytest.raises(InvalidToken) as info:
        _verifier(keystore, FrozenClock(NOW), leeway=10).verify(token)
    assert info.value.reason == "not_yet_valid"


def test_any_of_several_resource_uris_is_accepted_rfc8707(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    token = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock).mint(_claims()).token
    both = _verifier(keystore, clock, audience=["https://other.example/", RESOURCE])
    assert both.verify(token).audience == (RESOURCE,)
    with pytest.raises(InvalidToken) as info:
        _verifier(keystore, clock, audience="https://other.example/").verify(token)
    assert info.value.reason == "wrong_audience"
    with pytest.raises(ValueError, match="audience"):
        _verifier(keystore, clock, audience=[])


def test_an_audience_array_containing_us_is_accepted_rfc7519_4_1_3(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    payload = {
        "iss": ISSUER,
        "sub": "usr_alice",
        "aud": ["https://other.example/", RESOURCE],
        "exp": NOW + 60,
        "iat": NOW,
        "jti": new_jti(),
        "client_id": "client-1",
    }
    token = encode_jwt(signers["ES256"], "at+jwt", payload)
    assert _verifier(keystore, clock).verify(token).audience == (
        "https://other.example/",
        RESOURCE,
    )


def test_a_narrowed_allow_list_refuses_other_algorithms_rfc8725_3_1(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers["ES256"], signers["RS256"]])
    minter = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock, algorithm="RS256")
    token = minter.mint(_claims()).token
    with pytest.raises(InvalidToken) as info:
        _verifier(keystore, clock, algorithms=("ES256", "PS256")).verify(token)
    assert info.value.reason == "alg_not_allowed"
    with pytest.raises(ValueError, match="subset"):
        _verifier(keystore, clock, algorithms=("HS256",))  # type: ignore[arg-type]


def test_an_id_token_typ_is_refused_by_the_access_token_verifier_rfc9068_4(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    keystore = StaticKeystore([signers["ES256"]])
    payload = {
        "iss": ISSUER,
        "sub": "usr_alice",
        "aud": RESOURCE,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": new_jti(),
        "client_id": "client-1",
    }
    with pytest.raises(InvalidToken) as info:
        _verifier(keystore, clock).verify(encode_jwt(signers["ES256"], "JWT", payload))
    assert info.value.reason == "wrong_typ"


def test_a_non_string_token_is_malformed(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    verifier = _verifier(StaticKeystore([signers["ES256"]]), clock)
    with pytest.raises(InvalidToken) as info:
        verifier.verify(b"a.b.c")  # type: ignore[arg-type]
    assert info.value.reason == "malformed"


# --- claim inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subject": ""}, "subject"),
        ({"client_id": 7}, "client_id"),
        ({"audience": ""}, "audience"),
        ({"scopes": "read write"}, "NQCHAR"),
        ({"scopes": ("read write",)}, "NQCHAR"),
        ({"scopes": ('"quoted"',)}, "NQCHAR"),
        ({"scopes": ("",)}, "NQCHAR"),
        ({"amr": "pwd"}, "amr"),
        ({"extra": {"sub": "usr_admin"}}, "redefine"),
        ({"extra": {"scope": "admin"}}, "redefine"),
    ],
)
def test_bad_claim_inputs_are_refused_at_construction(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _claims(**changes)


def test_minter_refuses_a_non_positive_lifetime(signers: dict[str, LocalSigner]) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        AccessTokenMinter(
            StaticKeystore([signers["ES256"]]), issuer=ISSUER, clock=FrozenClock(), lifetime=0
        )


def test_the_decoder_raises_the_error_class_its_user_names_rfc9101_6_3(
    signers: dict[str, LocalSigner],
) -> None:
    """core.jwt.JWTDecoder is shared: a request-object verifier wants invalid_request_object."""
    decoder = JWTDecoder(
        StaticKeystore([signers["ES256"]]), typ="oauth-authz-req+jwt", error=InvalidRequestObject
    )
    token = encode_jwt(signers["ES256"], "oauth-authz-req+jwt", {"iss": "client-1"})
    assert decoder.decode(token).claims == {"iss": "client-1"}
    with pytest.raises(InvalidRequestObject) as info:
        decoder.decode(encode_jwt(signers["ES256"], "at+jwt", {"iss": "client-1"}))
    assert info.value.reason == "wrong_typ"


def test_deeply_nested_json_is_malformed_not_a_crash_rfc8725_3_8(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    signer = signers["ES256"]
    keystore = StaticKeystore([signer])
    decoder = JWTDecoder(keystore, typ="at+jwt", max_size=60_000, max_header_size=30_000)
    deep = b"[" * 5000 + b"]" * 5000
    header = b64url_encode(
        b'{"alg":"ES256","typ":"at+jwt","kid":"%s","x":%s}' % (signer.kid.encode(), deep)
    )
    with pytest.raises(InvalidToken) as info:
        decoder.decode(f"{header}.e30.AAAA")
    assert info.value.reason == "malformed"
    good_header = encode_jwt(signer, "at+jwt", {}).split(".")[0]
    payload = b64url_encode(b'{"x":' + deep + b"}")
    signing_input = f"{good_header}.{payload}"
    token = f"{signing_input}.{b64url_encode(signer.sign(signing_input.encode()))}"
    with pytest.raises(InvalidToken) as info:
        decoder.decode(token)
    assert info.value.reason == "malformed"
