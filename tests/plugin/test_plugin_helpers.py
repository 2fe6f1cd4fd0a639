"""The helpers behind the fixtures, used directly: options, tokens (checked by the core's
verifiers), DPoP keys and proofs (checked by the core's proof verifier, each broken proof with
its RFC 9449 reason), challenge parsing and the assertion helpers."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import typing
from typing import Any

import pytest
from webob import Response

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.dpop import DPoPPolicy, verify_proof
from pyramid_attesto.core.errors import InvalidDPoPProof, InvalidToken
from pyramid_attesto.core.idtoken import IDTokenVerifier
from pyramid_attesto.core.keys import Algorithm
from pyramid_attesto.core.tokens import AccessTokenVerifier
from pytest_attesto import (
    BROKEN_PROOFS,
    DPoPKey,
    ProofFactory,
    TestKeystore,
    TokenFactory,
    assert_challenge,
    assert_oauth_error,
    parse_challenges,
)
from pytest_attesto._options import (
    TOKEN_ALGORITHMS,
    AttestoOptions,
    OptionsError,
    parse_marker_kwargs,
    resolve_options,
)
from pytest_attesto.dpop import BROKEN_PROOFS_RFC

NOW = 1_800_000_000
SETTINGS = {"attesto.issuer": "https://id.example", "attesto.resource": "https://api.example/v1"}


@pytest.fixture(scope="module")
def keystore() -> TestKeystore:
    return TestKeystore()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def options() -> AttestoOptions:
    return resolve_options(SETTINGS, [], wall_clock=NOW + 0.5)


@pytest.fixture
def tokens(keystore: TestKeystore, clock: FrozenClock, options: AttestoOptions) -> TokenFactory:
    return TokenFactory(keystore, clock, options)


def verifier(keystore: TestKeystore, clock: FrozenClock) -> AccessTokenVerifier:
    return AccessTokenVerifier(
        keystore, issuer="https://id.example", audience="https://api.example/v1", clock=clock
    )


# -- options ---------------------------------------------------------------------------------


def test_options_come_from_the_settings(options: AttestoOptions) -> None:
    assert options.issuer == "https://id.example"
    assert options.audience == "https://api.example/v1"
    assert options.base_url == "https://api.example"
    assert options.now == NOW
    assert (options.dpop_max_age, options.access_token_leeway) == (60, 30)


def test_public_url_and_markers_override_the_settings() -> None:
    settings = {**SETTINGS, "attesto.public_url": "https://gw.example/api/"}
    assert resolve_options(settings, [], wall_clock=NOW).base_url == "https://gw.example/api"
    markers = [
        ((), {"audience": "https://far.example", "settings": {"attesto.dpop.max_age": "5"}}),
        ((), {"audience": "https://near.example", "now": 7}),
    ]
    resolved = resolve_options(settings, markers, wall_clock=NOW)
    assert (resolved.audience, resolved.now, resolved.dpop_max_age) == (
        "https://near.example",
        7.0,
        5,
    )
    assert resolved.settings["attesto.issuer"] == "https://id.example"


def test_without_a_resource_the_audience_is_the_issuer_d11() -> None:
    resolved = resolve_options({"attesto.issuer": "https://id.example"}, [], wall_clock=NOW)
    assert resolved.audience == "https://id.example"
    assert resolved.base_url == "https://id.example"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"now": datetime.datetime(2030, 1, 1)},  # naive
        {"now": True},
        {"now": float("nan")},
        {"issuer": "ftp://id.example"},
        {"base_url": 3},
        {"client_id": ""},
        {"dpop_alg": "HS256"},
        {"settings": {1: "x"}},
    ],
)
def test_bad_marker_values_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(OptionsError, match="attesto marker: " + next(iter(kwargs))):
        parse_marker_kwargs((), kwargs)


def test_the_plugin_knows_the_core_algorithms() -> None:
    """_options keeps its own copy (so loading the plugin imports no pyramid): it must match."""
    assert typing.get_args(Algorithm) == TOKEN_ALGORITHMS


# -- tokens ----------------------------------------------------------------------------------


def test_minted_access_tokens_verify_with_the_core_verifier(
    keystore: TestKeystore, clock: FrozenClock, tokens: TokenFactory
) -> None:
    key = DPoPKey.generate()
    token = tokens(
        "alice",
        scopes="read:reports profile",
        dpop_key=key,
        acr="urn:mfa",
        amr=["pwd", "otp"],
        auth_time=NOW - 10,
        extra={"roles": ["admin"]},
    )
    verified = verifier(keystore, clock).verify(token)
    assert verified.subject == "alice"
    assert verified.client_id == "attesto-test-client"
    assert verified.scopes == ("read:reports", "profile")
    assert verified.cnf == {"jkt": key.jkt}
    assert (verified.acr, verified.amr, verified.auth_time) == ("urn:mfa", ("pwd", "otp"), NOW - 10)
    assert verified.principal_kind == "user"
    assert verified.claims["roles"] == ["admin"]
    assert verified.alg == "ES256"


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_each_keystore_algorithm_signs(
    keystore: TestKeystore, clock: FrozenClock, tokens: TokenFactory, alg: Algorithm
) -> None:
    assert verifier(keystore, clock).verify(tokens(alg=alg)).alg == alg


def test_an_expired_token_is_past_the_leeway_rfc9068_4(
    keystore: TestKeystore, clock: FrozenClock, tokens: TokenFactory
) -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier(keystore, clock).verify(tokens.expired(scopes=["read:reports"]))
    assert caught.value.reason == "expired"


def test_cnf_and_jkt_cannot_both_be_given(tokens: TokenFactory) -> None:
    key = DPoPKey.generate()
    with pytest.raises(ValueError, match="not both"):
        tokens(jkt=key.jkt, cnf={"x5t#S256": "abc"})
    with pytest.raises(ValueError, match="different keys"):
        tokens(jkt="other", dpop_key=key)


def test_id_tokens_verify_with_the_core_verifier(
    keystore: TestKeystore, clock: FrozenClock, tokens: TokenFactory
) -> None:
    access = tokens("alice")
    id_token = tokens.id_token("alice", nonce="n-1", access_token=access)
    verified = IDTokenVerifier(keystore, issuer="https://id.example", clock=clock).verify(
        id_token, client_id="attesto-test-client", nonce="n-1", access_token=access
    )
    assert verified.subject == "alice"


def test_the_keystore_publishes_public_keys_only(keystore: TestKeystore, tmp_path: Any) -> None:
    path = keystore.write_jwks(tmp_path / "jwks.json")
    keys = json.loads(path.read_text())["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "EdDSA", "RS256"]
    assert not [k for k in keys if {"d", "p", "q"} & set(k)]


# -- DPoP ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_dpop_key_thumbprint_is_rfc7638() -> None:
    key = DPoPKey.generate("ES256")
    jwk = key.public_jwk
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    assert key.jkt == _b64(hashlib.sha256(canonical.encode()).digest())
    assert "d" not in jwk


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256", "RS256"])
def test_good_proofs_verify_with_the_core_verifier(
    clock: FrozenClock, options: AttestoOptions, alg: str
) -> None:
    key = DPoPKey.generate(alg)
    proof = ProofFactory(key, clock, options)("post", "/reports?x=1#f", access_token="tok")
    verified = verify_proof(
        proof,
        htm="POST",
        htu="https://api.example/reports",
        clock=clock,
        access_token="tok",
        jkt=key.jkt,
    )
    assert (verified.jkt, verified.alg, verified.iat) == (key.jkt, alg, NOW)


_REASONS = {
    "wrong_htu": "htu_mismatch",
    "wrong_htm": "htm_mismatch",
    "stale_iat": "iat_too_old",
    "future_iat": "iat_in_future",
    "wrong_ath": "ath_mismatch",
    "missing_ath": "missing_ath",
    "wrong_key": "jkt_mismatch",
}


@pytest.mark.parametrize("broken", sorted(_REASONS))
def test_each_broken_proof_fails_the_core_verifier_for_its_reason_rfc9449_4_3(
    clock: FrozenClock, options: AttestoOptions, broken: Any
) -> None:
    key = DPoPKey.generate()
    proofs = ProofFactory(key, clock, options)
    proof = proofs("GET", "/reports", access_token="tok", broken=broken)
    with pytest.raises(InvalidDPoPProof) as caught:
        verify_proof(
            proof,
            htm="GET",
            htu="https://api.example/reports",
            clock=clock,
            access_token="tok",
            jkt=key.jkt,
            policy=DPoPPolicy(max_age=options.dpop_max_age),
        )
    assert caught.value.reason == _REASONS[broken], BROKEN_PROOFS_RFC[broken]


def test_a_reused_jti_proof_repeats_the_previous_jti_of_its_key_rfc9449_11_1(
    clock: FrozenClock, options: AttestoOptions
) -> None:
    proofs = ProofFactory(DPoPKey.generate(), clock, options)
    with pytest.raises(ValueError, match="earlier proof"):
        proofs("GET", "/", broken="reused_jti")
    first = proofs("GET", "/")
    again = proofs("GET", "/", broken="reused_jti")
    common = {"htm": "GET", "htu": "https://api.example/", "clock": clock}
    assert verify_proof(first, **common).replay_key == verify_proof(again, **common).replay_key


def test_every_broken_kind_is_documented() -> None:
    assert set(BROKEN_PROOFS) == set(BROKEN_PROOFS_RFC) == {*_REASONS, "reused_jti"}


def test_ath_breakage_needs_a_token(clock: FrozenClock, options: AttestoOptions) -> None:
    proofs = ProofFactory(DPoPKey.generate(), clock, options)
    with pytest.raises(ValueError, match="sends a token"):
        proofs("GET", "/", broken="wrong_ath")
    with pytest.raises(ValueError, match="unknown broken proof"):
        proofs("GET", "/", broken="wrong_everything")  # type: ignore[arg-type]


# -- challenges and assertions ------------------------------------------------------------------


def test_parse_challenges_rfc9110_11_6_1() -> None:
    header = (
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple", '
        "Basic dXNlcjpwYXNz==, DPoP"
    )
    parsed = parse_challenges(header)
    assert [c.scheme for c in parsed] == ["Newauth", "Basic", "Basic", "DPoP"]
    assert parsed[0].params == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert parsed[2].token68 == "dXNlcjpwYXNz=="
    with pytest.raises(ValueError, match="unterminated"):
        parse_challenges('Bearer error="x')


def _error_response(status: int, body: dict[str, str], challenge: str | None = None) -> Any:
    response = Response(status=status, json_body=body)
    if challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    response.status_int = status
    return response


def test_assert_oauth_error_reads_body_challenge_and_redirect() -> None:
    bearer = _error_response(
        401, {"error": "invalid_token"}, 'Bearer error="invalid_token", scope="a"'
    )
    assert assert_oauth_error(bearer, "invalid_token", status=401, scheme="Bearer")["error"]
    challenge_only = Response(status=401)
    challenge_only.headers["WWW-Authenticate"] = 'DPoP error="use_dpop_nonce"'
    assert_oauth_error(challenge_only, "use_dpop_nonce", status=401, scheme="DPoP")
    redirect = Response(status=302, location="https://app.example/cb?error=access_denied&iss=x")
    assert_oauth_error(redirect, "access_denied", status=302)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error": "invalid_request"}, "expected OAuth error 'invalid_request', got"),
        ({"error": "invalid_token", "status": 400}, "came with status 401, expected 400"),
        ({"error": "invalid_token", "scheme": "DPoP"}, "expected a DPoP challenge"),
        ({"error": "invalid_token", "description": "other"}, "error_description"),
    ],
)
def test_assert_oauth_error_says_what_differs(kwargs: dict[str, Any], message: str) -> None:
    response = _error_response(
        401,
        {"error": "invalid_token", "error_description": "expired"},
        'Bearer error="invalid_token"',
    )
    with pytest.raises(AssertionError, match=message):
        assert_oauth_error(response, **kwargs)


def test_assert_oauth_error_refuses_a_body_and_challenge_that_disagree() -> None:
    response = _error_response(401, {"error": "invalid_token"}, 'Bearer error="invalid_request"')
    with pytest.raises(AssertionError, match="the body says"):
        assert_oauth_error(response, "invalid_token")
    with pytest.raises(AssertionError, match="carries none"):
        assert_oauth_error(Response(status=200), "invalid_token")


def test_assert_challenge() -> None:
    response = Response(status=401)
    response.headers["WWW-Authenticate"] = 'Bearer scope="read", DPoP algs="ES256"'
    assert assert_challenge(response, "dpop", error=None, algs="ES256") == {"algs": "ES256"}
    with pytest.raises(AssertionError, match="no Basic challenge"):
        assert_challenge(response, "Basic")
    with pytest.raises(AssertionError, match="scope is 'read', expected 'write'"):
        assert_challenge(response, "Bearer", scope="write")
    with pytest.raises(AssertionError, match="expected status 403"):
        assert_challenge(response, "Bearer", status=403)


def test_every_public_name_resolves() -> None:
    import pytest_attesto

    for name in pytest_attesto.__all__:
        assert getattr(pytest_attesto, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pytest_attesto.nope  # type: ignore[attr-defined]  # noqa: B018
