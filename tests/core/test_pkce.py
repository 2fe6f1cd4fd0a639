from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyramid_attesto.core import pkce
from pyramid_attesto.core.encoding import b64url_encode
from pyramid_attesto.core.errors import InvalidGrant, InvalidRequest

VECTOR = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "rfc7636_appendix_b.json").read_text()
)


def test_rfc7636_appendix_b_vector() -> None:
    verifier = VECTOR["code_verifier"]
    assert b64url_encode(bytes(VECTOR["code_verifier_octets"])) == verifier
    assert pkce.challenge_for(verifier) == VECTOR["code_challenge"]
    assert pkce.validate_challenge(VECTOR["code_challenge"], "S256") == VECTOR["code_challenge"]
    pkce.verify(verifier, VECTOR["code_challenge"])


def test_no_challenge_no_verifier_is_fine() -> None:
    assert pkce.validate_challenge(None, None) is None
    pkce.verify(None, None)


@pytest.mark.parametrize(
    ("challenge", "method", "reason"),
    [
        (VECTOR["code_challenge"], None, "pkce_method"),  # RFC 7636 §4.3: absent = plain
        (VECTOR["code_challenge"], "plain", "pkce_method"),  # RFC 9700 §2.1.1
        (VECTOR["code_challenge"], "s256", "pkce_method"),  # method is case-sensitive
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c", "S256", "pkce_challenge"),  # 42 chars
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN", "S256", "pkce_challenge"),  # bad bits
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", "S256", "pkce_challenge"),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=", "S256", "pkce_challenge"),
        (None, "S256", "pkce"),
    ],
)
def test_bad_challenge_is_invalid_request_rfc7636_4_4(
    challenge: str | None, method: str | None, reason: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        pkce.validate_challenge(challenge, method)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("verifier", "challenge", "reason"),
    [
        # RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade
        (VECTOR["code_verifier"], None, "pkce_downgrade"),
        (None, VECTOR["code_challenge"], "pkce_missing"),  # RFC 7636 §4.5
        ("a" * 42, VECTOR["code_challenge"], "pkce_malformed"),  # RFC 7636 §4.1: 43..128
        ("a" * 129, VECTOR["code_challenge"], "pkce_malformed"),
        ("a" * 42 + "+", VECTOR["code_challenge"], "pkce_malformed"),
        ("a" * 43, VECTOR["code_challenge"], "pkce_mismatch"),  # RFC 7636 §4.6
        (VECTOR["code_verifier"] + "x", VECTOR["code_challenge"], "pkce_mismatch"),
    ],
)
def test_bad_verifier_is_invalid_grant_rfc7636_4_6(
    verifier: str | None, challenge: str | None, reason: str
) -> None:
    with pytest.raises(InvalidGrant) as info:
        pkce.verify(verifier, challenge)
    assert info.value.reason == reason
    assert VECTOR["code_verifier"] not in str(info.value.description)


def test_verifier_bounds_are_inclusive_rfc7636_4_1() -> None:
    for verifier in ("a" * 43, "~._-" * 32):
        pkce.verify(verifier, pkce.challenge_for(verifier))
