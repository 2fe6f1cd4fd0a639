"""OpenID Connect ID tokens (OpenID Connect Core §2, §3.1.3.6, §3.1.3.7, §3.3.2.11)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.encoding import b64url_decode
from pyramid_attesto.core.errors import ConfigurationError, InvalidToken
from pyramid_attesto.core.idtoken import (
    IDTokenClaims,
    IDTokenMinter,
    IDTokenVerifier,
    token_hash,
)
from pyramid_attesto.core.jwt import encode_jwt
from pyramid_attesto.core.keys import Algorithm, LocalSigner, StaticKeystore, generate_key
from pyramid_attesto.core.keys import private_signer as signer_for
from pyramid_attesto.core.tokens import (
    AccessTokenClaims,
    AccessTokenMinter,
    AccessTokenVerifier,
)

ISSUER = "https://op.example.com"
NOW = 1_700_000_000
ALGS: tuple[Algorithm, ...] = ("ES256", "EdDSA", "RS256", "PS256")


@pytest.fixture(scope="module")
def signers() -> dict[str, LocalSigner]:
    return {alg: signer_for(generate_key(alg)) for alg in ALGS}


@pytest.fixture(scope="module")
def keystore(signers: dict[str, LocalSigner]) -> StaticKeystore:
    return StaticKeystore(signers.values())


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def _mint(keystore: StaticKeystore, clock: FrozenClock, **kw: Any) -> str:
    alg = kw.pop("alg", None)
    claims = IDTokenClaims(**{"subject": "usr_alice", "client_id": "client-1", **kw})
    return IDTokenMinter(keystore, issuer=ISSUER, clock=clock).mint(claims, alg=alg).token


def _verifier(keystore: StaticKeystore, clock: FrozenClock) -> IDTokenVerifier:
    return IDTokenVerifier(keystore, issuer=ISSUER, clock=clock)


def _reason(call: Any) -> str | None:
    with pytest.raises(InvalidToken) as info:
        call()
    return info.value.reason


def test_at_hash_matches_the_oidc_core_worked_example_a_3() -> None:
    """OpenID Connect Core Appendix A.3 (an RS256 ID token with at_hash)."""
    assert token_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == (
        "77QmUPtjPfzWtF2AnpK9RQ"
    )


@pytest.mark.parametrize("alg", ALGS)
def test_token_hash_is_the_left_half_of_the_algs_hash_oidc_core_3_1_3_6(alg: Algorithm) -> None:
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(b"some-token").digest()
    expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
    assert token_hash("some-token", alg) == expected
    with pytest.raises(ValueError, match="HS256"):
        token_hash("x", "HS256")


@pytest.mark.parametrize("alg", ALGS)
def test_round_trip_oidc_core_2(
    alg: Algorithm, keystore: StaticKeystore, clock: FrozenClock
) -> None:
    token = _mint(
        keystore,
        clock,
        alg=alg,
        auth_time=NOW - 5,
        nonce="n-0S6_WzA2Mj",
        acr="urn:mace:incommon:iap:silver",
        amr=("pwd",),
        azp="client-1",
        sid="sid-1",
        access_token="at-value",
        code="code-value",
        extra={"email": "alice@example.com"},
    )
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header["typ"] == "JWT"
    assert header["alg"] == alg
    payload = json.loads(b64url_decode(token.split(".")[1]))
    assert payload["aud"] == "client-1"
    assert payload["at_hash"] == token_hash("at-value", alg)
    assert payload["c_hash"] == token_hash("code-value", alg)
    assert payload["exp"] - payload["iat"] == 600
    verified = _verifier(keystore, clock).verify(
        token,
        client_id="client-1",
        nonce="n-0S6_WzA2Mj",
        access_token="at-value",
        code="code-value",
    )
    assert (verified.subject, verified.audience, verified.nonce) == (
        "usr_alice",
        ("client-1",),
        "n-0S6_WzA2Mj",
    )
    assert (verified.auth_time, verified.acr, verified.amr, verified.azp, verified.sid) == (
        NOW - 5,
        "urn:mace:incommon:iap:silver",
        ("pwd",),
        "client-1",
        "sid-1",
    )
    assert verified.claims["email"] == "alice@example.com"
    assert verified.alg == alg


def test_rs256_is_the_default_oidc_core_15_1(keystore: StaticKeystore, clock: FrozenClock) -> None:
    token = _mint(keystore, clock)
    assert _verifier(keystore, clock).verify(token, client_id="client-1").alg == "RS256"


def test_without_an_rsa_key_the_default_names_the_fix_oidc_core_15_1(
    signers: dict[str, LocalSigner], clock: FrozenClock
) -> None:
    with pytest.raises(ConfigurationError, match="RS256"):
        _mint(StaticKeystore([signers["ES256"]]), clock)


def test_optional_claims_are_left_out_when_unknown(
    keystore: StaticKeystore, clock: FrozenClock
) -> None:
    payload = json.loads(b64url_decode(_mint(keystore, clock).split(".")[1]))
    assert set(payload) == {"iss", "sub", "aud", "exp", "iat"}


def test_an_access_token_is_not_an_id_token_and_back_rfc8725_3_11(
    keystore: StaticKeystore, clock: FrozenClock
) -> None:
    access = (
        AccessTokenMinter(keystore, issuer=ISSUER, clock=clock)
        .mint(AccessTokenClaims(subject="usr_alice", client_id="client-1", audience="client-1"))
        .token
    )
    assert _reason(lambda: _verifier(keystore, clock).verify(access, client_id="client-1")) == (
        "wrong_typ"
    )
    id_token = _mint(keystore, clock)
    access_verifier = AccessTokenVerifier(keystore, issuer=ISSUER, audience="client-1", clock=clock)
    assert _reason(lambda: access_verifier.verify(id_token)) == "wrong_typ"


def test_wrong_client_is_refused_oidc_core_3_1_3_7_3(
    keystore: StaticKeystore, clock: FrozenClock
) -> None:
    token = _mint(keystore, clock)
    verifier = _verifier(keystore, clock)
    assert _reason(lambda: verifier.verify(token, client_id="client-2")) == "wrong_audience"
    assert verifier.verify(token, client_id=None).audience == ("client-1",)


def test_several_audiences_need_azp_oidc_core_3_1_3_7_4(
    signers: dict[str, LocalSigner], keystore: StaticKeystore, clock: FrozenClock
) -> None:
    base = {"iss": ISSUER, "sub": "usr_alice", "exp": NOW + 60, "iat": NOW}
    verifier = _verifier(keystore, clock)
    two = {**base, "aud": ["client-1", "client-2"]}
    token = encode_jwt(signers["RS256"], "JWT", two)
    assert _reason(lambda: verifier.verify(token, client_id="client-1")) == "missing_claim"
    token = encode_jwt(signers["RS256"], "JWT", {**two, "azp": "client-2"})
    assert _reason(lambda: verifier.verify(token, client_id="client-1")) == "wrong_azp"
    token = encode_jwt(signers["RS256"], "JWT", {**two, "azp": "client-1"})
    assert verifier.verify(token, client_id="client-1").azp == "client-1"


def test_nonce_must_match_oidc_core_3_1_3_7_11(
    keystore: StaticKeystore, clock: FrozenClock
) -> None:
    verifier = _verifier(keystore, clock)
    token = _mint(keystore, clock, nonce="abc")
    assert _reason(lambda: verifier.verify(token, client_id="client-1", nonce="abd")) == (
        "wrong_nonce"
    )
    no_nonce = _mint(keystore, clock)
    assert _reason(lambda: verifier.verify(no_nonce, client_id="client-1", nonce="abc")) == (
        "missing_claim"
    )


def test_at_hash_and_c_hash_must_match_oidc_core_3_2_2_9_and_3_3_2_10(
    keystore: StaticKeystore, clock: FrozenClock
) -> None:
    verifier = _verifier(keystore, clock)
    token = _mint(keystore, clock, access_token="at-1", code="code-1")
    assert _reason(lambda: verifier.verify(token, client_id="client-1", access_token="at-2")) == (
        "wrong_at_hash"
    )
    assert _reason(lambda: verifier.verify(token, client_id="client-1", code="code-2")) == (
        "wrong_c_hash"
    )
    bare = _mint(keystore, clock)
    assert _reason(lambda: verifier.verify(bare, client_id="client-1", access_token="at-1")) == (
        "missing_claim"
    )


def test_expired_hints_are_accepted_only_when_asked_oidc_rp_initiated_logout_2(
    keystore: StaticKeystore,
) -> None:
    token = _mint(keystore, FrozenClock(NOW))
    later = _verifier(keystore, FrozenClock(NOW + 3600))
    assert _reason(lambda: later.verify(token, client_id="client-1")) == "expired"
    assert later.verify(token, client_id="client-1", allow_expired=True).subject == "usr_alice"


def test_another_issuer_is_refused_oidc_core_3_1_3_7_2(
    keystore: StaticKeystore, clock: FrozenClock
) -> None:
    token = _mint(keystore, clock)
    other = IDTokenVerifier(keystore, issuer="https://other.example", clock=clock)
    assert _reason(lambda: other.verify(token, client_id="client-1")) == "wrong_issuer"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subject": ""}, "subject"),
        ({"client_id": ""}, "client_id"),
        ({"amr": "pwd"}, "amr"),
        ({"extra": {"nonce": "x"}}, "redefine"),
    ],
)
def test_bad_claim_inputs_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IDTokenClaims(**{"subject": "usr_alice", "client_id": "client-1", **changes})


def test_minter_refuses_a_non_positive_lifetime(keystore: StaticKeystore) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        IDTokenMinter(keystore, issuer=ISSUER, clock=FrozenClock(), lifetime=-1)


def test_the_secret_inputs_stay_out_of_the_repr() -> None:
    claims = IDTokenClaims(
        subject="usr_alice", client_id="client-1", access_token="at-secret", code="code-secret"
    )
    assert "at-secret" not in repr(claims)
    assert "code-secret" not in repr(claims)
