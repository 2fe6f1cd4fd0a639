"""The resource server's protocol decisions, without a web server (core.resource)."""

from __future__ import annotations

import pytest

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.dpop import DPoPVerifier
from pyramid_attesto.core.errors import InvalidRequest
from pyramid_attesto.core.keys import generate_development_keystore
from pyramid_attesto.core.resource import (
    Credential,
    Refusal,
    ResourcePolicy,
    ResourceRequest,
    ResourceVerifier,
    VerifiedAccess,
    check_authentication,
    check_scopes,
    parse_authorization,
)
from pyramid_attesto.core.scopes import GrantedScopes, ScopeCatalog
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter, AccessTokenVerifier

NOW = 1_700_000_000
RESOURCE = "https://api.example/api"


@pytest.mark.parametrize(
    ("value", "scheme", "token"),
    [
        ("Bearer abc.def.ghi", "Bearer", "abc.def.ghi"),
        ("bearer  abc", "Bearer", "abc"),
        ("DPoP a-b_c~d+e/f==", "DPoP", "a-b_c~d+e/f=="),
        ("  dpop x  ", "DPoP", "x"),
    ],
)
def test_bearer_and_dpop_credentials_rfc6750_2_1_rfc9449_7_1(
    value: str, scheme: str, token: str
) -> None:
    credential = parse_authorization(value)
    assert credential == Credential(scheme, token)  # type: ignore[arg-type]
    assert token not in repr(credential)


@pytest.mark.parametrize("value", ["Basic dXNlcjpwdw==", "Negotiate abc", "", "Bearerabc"])
def test_other_schemes_are_not_ours(value: str) -> None:
    assert parse_authorization(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Bearer", "no_token"),
        ("Bearer   ", "no_token"),
        ("Bearer a b", "malformed_authorization"),
        ("Bearer a,b", "malformed_authorization"),
        ("DPoP a=b", "malformed_authorization"),
        ("Bearer " + "a" * 20000, "token_too_large"),
    ],
)
def test_malformed_fields_are_invalid_request_rfc6750_3_1(value: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_authorization(value)
    assert caught.value.reason == reason


def test_scopes_are_checked_against_every_requirement_rfc6750_3_1() -> None:
    granted = GrantedScopes(["read:*"])
    catalog = ScopeCatalog.of(["read:reports", "write:reports"])
    assert check_scopes(granted, ["read:reports"], catalog) is None
    error = check_scopes(granted, ["read:reports", "write:reports"], catalog)
    assert error is not None
    assert (error.status, error.scope) == (403, "read:reports write:reports")


@pytest.mark.parametrize(
    ("claims", "acr_values", "max_age", "reason"),
    [
        ({}, ("urn:mfa",), None, "acr"),
        ({"acr": "urn:pwd"}, ("urn:mfa",), None, "acr"),
        ({"acr": 1}, ("urn:mfa",), None, "acr"),
        ({}, (), 60, "max_age"),
        ({"auth_time": True}, (), 60, "max_age"),
        ({"auth_time": "1700000000"}, (), 60, "max_age"),
        ({"auth_time": NOW - 61}, (), 60, "max_age"),
    ],
)
def test_weak_or_old_authentication_rfc9470_3(
    claims: dict[str, object], acr_values: tuple[str, ...], max_age: int | None, reason: str
) -> None:
    error = check_authentication(claims, acr_values=acr_values, max_age=max_age, now=NOW)
    assert error is not None
    assert (error.error, error.status, error.reason) == (
        "insufficient_user_authentication",
        401,
        reason,
    )


def test_strong_recent_authentication_passes_rfc9470_3() -> None:
    claims = {"acr": "urn:mfa", "auth_time": NOW - 60}
    assert check_authentication(claims, acr_values=("urn:mfa",), max_age=60, now=NOW) is None
    assert check_authentication({}, now=NOW) is None


def _verifier(replay: object) -> tuple[ResourceVerifier, AccessTokenMinter]:
    clock = FrozenClock(NOW)
    keystore = generate_development_keystore(("ES256",))
    verifier = ResourceVerifier(
        tokens=AccessTokenVerifier(
            keystore, issuer="https://as.example", audience=RESOURCE, clock=clock
        ),
        dpop=DPoPVerifier(clock=clock),
        replay=replay,  # type: ignore[arg-type]
        clock=clock,
        policy=ResourcePolicy(),
    )
    return verifier, AccessTokenMinter(keystore, issuer="https://as.example", clock=clock)


def test_dpop_without_a_replay_store_fails_closed_rfc9449_11_1() -> None:
    from joserfc.jwk import ECKey

    from pyramid_attesto.core.dpop import build_proof

    verifier, minter = _verifier(None)
    key = ECKey.generate_key("P-256")
    jkt = key.thumbprint()
    token = minter.mint(
        AccessTokenClaims(subject="s", client_id="c", audience=RESOURCE, cnf={"jkt": jkt})
    ).token
    url = RESOURCE + "/reports"
    proof = build_proof(key, "GET", url, access_token=token, iat=NOW)
    result = verifier.verify(ResourceRequest("GET", url, Credential("DPoP", token), dpop=(proof,)))
    assert isinstance(result, Refusal)
    assert (result.error.error, result.reason, result.scheme, result.error.status) == (
        "invalid_dpop_proof",
        "replay_store_unconfigured",
        "DPoP",
        401,
    )


def test_a_bearer_access_has_no_binding() -> None:
    verifier, minter = _verifier(None)
    token = minter.mint(AccessTokenClaims(subject="s", client_id="c", audience=RESOURCE)).token
    result = verifier.verify(ResourceRequest("GET", RESOURCE, Credential("Bearer", token)))
    assert isinstance(result, VerifiedAccess)
    assert result.binding is None
    assert result.proof is None
