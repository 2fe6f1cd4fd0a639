"""``WWW-Authenticate`` building: RFC 9110 §11.6.1 / §5.6.4 syntax, RFC 6750 §3, RFC 9449 §7.1
and §7.2, RFC 9470 §3, RFC 9728 §5.1."""

from __future__ import annotations

import pytest
from resource_support import challenge_params

from pyramid_attesto.challenges import (
    AttestoDenialPredicate,
    AttestoDenied,
    Challenge,
    ChallengeOptions,
    build_challenges,
    challenge_body,
    challenge_response,
    quote,
    render_challenges,
)
from pyramid_attesto.core.errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidDPoPProof,
    InvalidToken,
    ServerError,
    UseDPoPNonce,
)

BOTH = ChallengeOptions(dpop_algs=("ES256", "PS256"))
BEARER_ONLY = ChallengeOptions()
DPOP_ONLY = ChallengeOptions(dpop_algs=("ES256",), bearer=False)
PRM = "https://api.example/.well-known/oauth-protected-resource/api"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ('a "quoted" word', '"a \\"quoted\\" word"'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\there", '"tab\there"'),
        ("", '""'),
    ],
)
def test_values_are_quoted_strings_rfc9110_5_6_4(value: str, quoted: str) -> None:
    assert quote(value) == quoted
    # ... and read back unchanged by a conforming parser.
    assert dict(challenge_params(f"X p={quoted}"))["X"]["p"] == value


@pytest.mark.parametrize("value", ["line\r\nInjected: yes", "nul\x00", "caf\u00e9", "\x7f"])
def test_unsendable_values_are_refused_not_sent_rfc9110_5_5(value: str) -> None:
    with pytest.raises(ValueError, match="control or non-ASCII"):
        quote(value)


def test_scheme_and_parameter_names_must_be_tokens_rfc9110_11_2() -> None:
    with pytest.raises(ValueError, match="auth-scheme"):
        Challenge("Bad Scheme").render()
    with pytest.raises(ValueError, match="auth-param"):
        Challenge("Bearer", (("bad name", "x"),)).render()


def test_challenges_render_in_one_field_rfc9110_11_6_1() -> None:
    value = render_challenges([Challenge("Bearer"), Challenge("DPoP", (("algs", "ES256"),))])
    assert value == 'Bearer, DPoP algs="ES256"'


def test_no_credentials_offer_every_scheme_without_error_rfc6750_3_1_rfc9449_7_2() -> None:
    denied = AttestoDenied(required_scopes=("read:reports",), resource_metadata=PRM)
    rendered = render_challenges(build_challenges(denied, BOTH))
    assert rendered == (
        f'Bearer scope="read:reports", resource_metadata="{PRM}", '
        f'DPoP scope="read:reports", resource_metadata="{PRM}", algs="ES256 PS256"'
    )
    assert denied.status == 401
    assert denied.reason == "no_credentials"
    assert not denied
    assert challenge_body(denied) == {}


def test_a_dpop_only_resource_offers_only_dpop_rfc9728_2() -> None:
    (challenge,) = build_challenges(AttestoDenied(), DPOP_ONLY)
    assert challenge.render() == 'DPoP algs="ES256"'
    error = InvalidToken("nope", reason="dpop_required")
    (challenge,) = build_challenges(AttestoDenied(error, scheme="Bearer"), DPOP_ONLY)
    assert challenge.scheme == "DPoP"


def test_an_error_uses_the_scheme_the_client_used_rfc9449_7_1() -> None:
    error = InvalidToken("expired", reason="expired")
    (bearer,) = build_challenges(AttestoDenied(error, scheme="Bearer"), BOTH)
    assert bearer.render() == 'Bearer error="invalid_token", error_description="expired"'
    (dpop,) = build_challenges(AttestoDenied(error, scheme="DPoP"), BOTH)
    assert dpop.render() == (
        'DPoP error="invalid_token", error_description="expired", algs="ES256 PS256"'
    )
    # Without DPoP support every error is a Bearer challenge.
    (only,) = build_challenges(AttestoDenied(error, scheme="DPoP"), BEARER_ONLY)
    assert only.scheme == "Bearer"


def test_use_dpop_nonce_is_always_a_dpop_challenge_with_the_nonce_header_rfc9449_9() -> None:
    error = UseDPoPNonce(nonce="n-1").with_status(401)
    denied = AttestoDenied(error, scheme="DPoP", resource_metadata=PRM)
    response = challenge_response(denied, BOTH)
    assert response.status_int == 401
    assert response.headers["DPoP-Nonce"] == "n-1"
    assert response.headers["WWW-Authenticate"].startswith('DPoP error="use_dpop_nonce"')
    assert response.headers["Cache-Control"] == "no-store"


def test_insufficient_scope_names_the_scope_in_challenge_and_body_rfc6750_3_1() -> None:
    error = InsufficientScope("more scope needed", scope="read:reports write:reports")
    denied = AttestoDenied(error, scheme="Bearer", required_scopes=("ignored",))
    (challenge,) = build_challenges(denied, BEARER_ONLY)
    assert dict(challenge.params)["scope"] == "read:reports write:reports"
    assert challenge_body(denied)["scope"] == "read:reports write:reports"
    assert denied.status == 403


def test_step_up_carries_acr_values_and_max_age_rfc9470_3() -> None:
    error = InsufficientUserAuthentication("stronger login needed", reason="acr")
    denied = AttestoDenied(error, scheme="Bearer", acr_values=("urn:mfa", "urn:hw"), max_age=60)
    (challenge,) = build_challenges(denied, BEARER_ONLY)
    assert challenge.render() == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="stronger login needed", acr_values="urn:mfa urn:hw", max_age="60"'
    )


def test_the_realm_comes_first_and_is_escaped_rfc6750_3() -> None:
    options = ChallengeOptions(realm='my "api"')
    (challenge,) = build_challenges(AttestoDenied(), options)
    assert challenge.render() == 'Bearer realm="my \\"api\\""'


def test_an_unsendable_realm_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="control or non-ASCII"):
        ChallengeOptions(realm="r\n")
    with pytest.raises(ValueError, match="Bearer or DPoP"):
        ChallengeOptions(bearer=False)


def test_errors_that_are_not_resource_errors_get_no_challenge() -> None:
    response = challenge_response(AttestoDenied(ServerError("boom")), BOTH)
    assert response.status_int == 500
    assert "WWW-Authenticate" not in response.headers
    assert response.json == {"error": "server_error", "error_description": "boom"}


def test_invalid_dpop_proof_body_rfc9449_7_1() -> None:
    error = InvalidDPoPProof("bad proof", reason="htu_mismatch").with_status(401)
    response = challenge_response(AttestoDenied(error, scheme="DPoP"), BOTH)
    assert response.json == {"error": "invalid_dpop_proof", "error_description": "bad proof"}
    assert response.status_int == 401


def test_the_predicate_matches_only_attesto_denials() -> None:
    class Forbidden:
        def __init__(self, result: object) -> None:
            self.result = result

    predicate = AttestoDenialPredicate(True, None)
    assert predicate(Forbidden(AttestoDenied()), None)
    assert not predicate(Forbidden(None), None)
    assert not predicate(object(), None)
    assert predicate.text() == "attesto_denial = True"
    assert AttestoDenialPredicate(False, None)(Forbidden(None), None)
    with pytest.raises(TypeError):
        AttestoDenialPredicate("yes", None)
