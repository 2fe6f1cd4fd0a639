"""The jwt-bearer grant: the ID-JAG profile (draft-ietf-oauth-identity-assertion-authz-grant,
MCP SEP-990) and plain RFC 7523 §2.1 / §3 assertions.

Every assertion is signed here with ``cryptography`` directly (``authz_jose_helpers``), so
these tests do not trust our JOSE code to make what it verifies.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

import pytest
from authz_jose_helpers import b64, public_jwk, sign
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pyramid_attesto.core.binding import PresentedKeys
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import (
    InvalidDPoPProof,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    UnauthorizedClient,
)
from pyramid_attesto.core.jwt_bearer import (
    GRANT_TYPE,
    ID_JAG_TYP,
    JWTBearerConfig,
    JWTBearerGrant,
    RemoteIssuerKeys,
    TrustedIssuer,
    VerifiedAssertion,
    jwt_bearer_grant,
)
from pyramid_attesto.core.outbound import FetchedDocument, FetchRefused, RemoteKeySets
from pyramid_attesto.core.scopes import ScopeCatalog
from pyramid_attesto.core.secret import sha256_b64url
from pyramid_attesto.storage import MemoryStorage

AS = "https://as.example"
TOKEN_ENDPOINT = f"{AS}/oauth/token"
IDP = "https://idp.example"
OTHER_IDP = "https://other-idp.example"
MCP = "https://mcp.example/mcp"
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

IDP_KEY = ec.generate_private_key(ec.SECP256R1())
ROTATED_KEY = ec.generate_private_key(ec.SECP256R1())
ATTACKER_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
IDP_JWKS = {
    "keys": [
        public_jwk(IDP_KEY, "idp-1"),
        public_jwk(RSA_KEY, "idp-rsa"),
        public_jwk(ED_KEY, "idp-ed"),
    ]
}

CLIENT = Client(
    client_id="mcp-client",
    grant_types=("authorization_code", GRANT_TYPE),
    scope="tools:read tools:write",
)


class Directory:
    """The host's subject resolver: maps the IdP's subject to a local user."""

    def __init__(self) -> None:
        self.calls: list[VerifiedAssertion] = []

    def resolve_subject(self, assertion: VerifiedAssertion, client: Client) -> str | None:
        self.calls.append(assertion)
        return {"00u1a2b3": "alice"}.get(assertion.subject)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(CLOCK.now())
    body: dict[str, Any] = {
        "iss": IDP,
        "sub": "00u1a2b3",
        "aud": AS,
        "client_id": "mcp-client",
        "jti": secrets.token_hex(8),
        "iat": now,
        "exp": now + 300,
        "resource": MCP,
        "scope": "tools:read tools:write",
        "auth_time": now - 120,
        "amr": ["pwd", "mfa"],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def id_jag(key: Any = IDP_KEY, kid: str = "idp-1", alg: str = "ES256", **changes: Any) -> str:
    header = {"alg": alg, "typ": changes.pop("typ", ID_JAG_TYP), "kid": kid}
    if header["typ"] is None:
        del header["typ"]
    header.update(changes.pop("header", {}))
    return sign(header, claims(**changes), key)


CLOCK = FrozenClock()
DIRECTORY = Directory()


def config(**overrides: Any) -> JWTBearerConfig:
    settings: dict[str, Any] = {
        "issuer": AS,
        "trusted_issuers": {IDP: TrustedIssuer(issuer=IDP, jwks=IDP_JWKS)},
        "subject_resolver": DIRECTORY,
        "token_endpoint": TOKEN_ENDPOINT,
        "resources": frozenset({MCP, "https://other.example/api"}),
        "catalog": ScopeCatalog.of(["tools:read", "tools:write", "admin"]),
    }
    settings.update(overrides)
    return JWTBearerConfig(**settings)


def form(assertion: str, **params: str) -> dict[str, list[str]]:
    body = {"grant_type": [GRANT_TYPE], "assertion": [assertion]}
    body.update({k: [v] for k, v in params.items()})
    return body


REPLAY = MemoryStorage(CLOCK).replay


def grant(
    body: dict[str, list[str]],
    *,
    client: Client = CLIENT,
    presented: PresentedKeys | None = None,
    **overrides: Any,
) -> JWTBearerGrant:
    return jwt_bearer_grant(
        body,
        client,
        config(**overrides),
        presented=presented or PresentedKeys(),
        replay=REPLAY,
        clock=CLOCK,
    )


def refusal(body: dict[str, list[str]], **kwargs: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        grant(body, **kwargs)
    return caught.value


def invalid_grant(body: dict[str, list[str]], **kwargs: Any) -> str:
    error = refusal(body, **kwargs)
    assert isinstance(error, InvalidGrant), error
    assert error.status == 400
    assert error.to_dict()["error"] == "invalid_grant"
    return error.reason or ""


# -- success ---------------------------------------------------------------------------------


def test_an_id_jag_yields_an_access_token_for_the_local_user() -> None:
    result = grant(form(id_jag()))
    assert result.issues_refresh_token is False
    assert result.token_type == "Bearer"
    token = result.claims
    assert (token.subject, token.client_id, token.audience) == ("alice", "mcp-client", MCP)
    assert token.scopes == ("tools:read", "tools:write")
    assert token.principal_kind == "user"
    assert token.amr == ("pwd", "mfa")
    assert result.assertion.profile == "id_jag"
    assert DIRECTORY.calls[-1].subject == "00u1a2b3"


@pytest.mark.parametrize(
    ("key", "kid", "alg"),
    [(RSA_KEY, "idp-rsa", "PS256"), (RSA_KEY, "idp-rsa", "RS256"), (ED_KEY, "idp-ed", "EdDSA")],
)
def test_other_algorithms_verify(key: Any, kid: str, alg: str) -> None:
    assert grant(form(id_jag(key, kid, alg))).claims.subject == "alice"


def test_typ_with_the_application_prefix_is_the_same_media_type_rfc7515_4_1_9() -> None:
    assert grant(form(id_jag(typ="application/oauth-id-jag+jwt"))).assertion.profile == "id_jag"


def test_an_aud_array_of_one_is_accepted() -> None:
    assert grant(form(id_jag(aud=[AS]))).claims.subject == "alice"


def test_scope_narrows_within_the_assertion() -> None:
    assert grant(form(id_jag(), scope="tools:read")).claims.scopes == ("tools:read",)


def test_without_a_scope_claim_the_request_or_the_registered_scope_applies() -> None:
    assert grant(form(id_jag(scope=None))).claims.scopes == ("tools:read", "tools:write")
    assert grant(form(id_jag(scope=None), scope="admin")).claims.scopes == ("admin",)


def test_the_resource_ceiling_allows_a_listed_resource() -> None:
    assertion = id_jag(resource=[MCP, "https://other.example/api"])
    result = grant(form(assertion, resource="https://other.example/api"))
    assert result.claims.audience == "https://other.example/api"


def test_without_a_resource_claim_the_default_resource_applies() -> None:
    assert grant(form(id_jag(resource=None))).claims.audience == AS
    result = grant(form(id_jag(resource=None)), default_resource=MCP)
    assert result.claims.audience == MCP


# -- the ID-JAG matrix -----------------------------------------------------------------------


def test_expired_rfc7523_3_4() -> None:
    now = int(CLOCK.now())
    assertion = id_jag(iat=now - 400, exp=now - 31)
    assert invalid_grant(form(assertion)) == "expired"


def test_expiry_within_the_leeway_is_accepted_rfc7523_3_4() -> None:
    now = int(CLOCK.now())
    assert grant(form(id_jag(iat=now - 200, exp=now - 5))).claims.subject == "alice"


def test_not_yet_valid_rfc7523_3_5() -> None:
    now = int(CLOCK.now())
    assertion = id_jag(nbf=now + 120, exp=now + 240)
    assert invalid_grant(form(assertion)) == "not_yet_valid"


def test_issued_in_the_future_rfc7523_3_6() -> None:
    now = int(CLOCK.now())
    assert invalid_grant(form(id_jag(iat=now + 120, exp=now + 240))) == "issued_in_future"


def test_too_long_a_lifetime_is_refused_rfc7523_3_4() -> None:
    now = int(CLOCK.now())
    assert invalid_grant(form(id_jag(exp=now + 3600))) == "lifetime_too_long"


@pytest.mark.parametrize(
    "aud",
    [
        "https://other-as.example",
        TOKEN_ENDPOINT,  # an ID-JAG's aud is the issuer, never the endpoint
        AS + "/",
        [AS, "https://other-as.example"],
        [],
        None,
        42,
    ],
)
def test_wrong_aud_id_jag_rfc7523_3_3(aud: Any) -> None:
    assert invalid_grant(form(id_jag(aud=aud))) == "wrong_aud"


@pytest.mark.parametrize(
    "typ", ["JWT", "at+jwt", "oauth-id-jag", "id-jag+jwt", "dpop+jwt", "secevent+jwt", 7]
)
def test_wrong_typ_rfc8725_3_11(typ: Any) -> None:
    """The IdP is trusted for ID-JAGs only: a JWT typed anything else is refused (plain
    ``JWT`` too, since plain RFC 7523 assertions are off for this issuer)."""
    assert invalid_grant(form(id_jag(typ=typ))) == "wrong_typ"


def test_no_typ_is_a_plain_assertion_refused_for_an_id_jag_only_issuer() -> None:
    assert invalid_grant(form(id_jag(typ=None))) == "wrong_typ"


def test_client_id_of_another_client_draft_id_jag() -> None:
    assert invalid_grant(form(id_jag(client_id="other-client"))) == "client_id_mismatch"


def test_missing_client_id_draft_id_jag() -> None:
    assert invalid_grant(form(id_jag(client_id=None))) == "missing_client_id"


def test_replayed_jti_rfc7523_3_7() -> None:
    assertion = id_jag(jti="single-use-1")
    grant(form(assertion))
    assert invalid_grant(form(assertion)) == "replay"


def test_the_replay_key_is_sha256_of_iss_and_jti() -> None:
    storage = MemoryStorage(CLOCK)
    now = int(CLOCK.now())
    assert storage.replay.check_and_record(sha256_b64url(f"{IDP}:taken"), now + 600)
    with pytest.raises(InvalidGrant) as caught:
        jwt_bearer_grant(
            form(id_jag(jti="taken")),
            CLIENT,
            config(),
            presented=PresentedKeys(),
            replay=storage.replay,
            clock=CLOCK,
        )
    assert caught.value.reason == "replay"


def test_missing_jti_draft_id_jag() -> None:
    assert invalid_grant(form(id_jag(jti=None))) == "missing_jti"


def test_untrusted_issuer_rfc7523_3_1() -> None:
    assertion = id_jag(ATTACKER_KEY, iss=OTHER_IDP)
    assert invalid_grant(form(assertion)) == "untrusted_issuer"


def test_bad_signature_rfc7523_3_9() -> None:
    """A trusted issuer's ``iss`` and ``kid``, signed by someone else's key."""
    assert invalid_grant(form(id_jag(ATTACKER_KEY))) == "bad_signature"


def test_a_tampered_payload_fails_the_signature_rfc7523_3_9() -> None:
    header, _, signature = id_jag().split(".")
    forged = b64(json.dumps(claims(sub="admin-user")).encode())
    assert invalid_grant(form(f"{header}.{forged}.{signature}")) == "bad_signature"


def test_an_unknown_kid_fails_the_signature() -> None:
    assert invalid_grant(form(id_jag(kid="nope"))) == "bad_signature"


def test_an_embedded_jwk_header_is_not_used_rfc8725_3_10() -> None:
    header = {"jwk": public_jwk(ATTACKER_KEY, "x"), "jku": "https://evil.example/jwks"}
    assertion = id_jag(ATTACKER_KEY, kid="x", header=header)
    assert invalid_grant(form(assertion)) == "bad_signature"


@pytest.mark.parametrize("alg", ["none", "HS256", "ES512"])
def test_an_algorithm_outside_the_allow_list_is_refused_rfc8725_3_1(alg: str) -> None:
    header = {"alg": alg, "typ": ID_JAG_TYP, "kid": "idp-1"}
    assertion = sign(header, claims(), None) + "c2lnbmF0dXJl"  # any signature bytes
    assert invalid_grant(form(assertion)) == "alg_not_allowed"


def test_resource_outside_the_ceiling_draft_id_jag() -> None:
    error = refusal(form(id_jag(), resource="https://other.example/api"))
    assert isinstance(error, InvalidTarget)
    assert error.reason == "outside_ceiling"


def test_a_ceiling_the_server_does_not_serve_is_invalid_target_rfc8707_2() -> None:
    error = refusal(form(id_jag(resource="https://elsewhere.example/")))
    assert isinstance(error, InvalidTarget)
    assert error.reason == "unknown_resource"


def test_several_resources_without_a_choice_is_invalid_target() -> None:
    error = refusal(form(id_jag(resource=[MCP, "https://other.example/api"])))
    assert isinstance(error, InvalidTarget)
    assert error.reason == "ambiguous"


def test_a_scope_above_the_assertion_is_invalid_scope() -> None:
    error = refusal(form(id_jag(scope="tools:read"), scope="tools:read admin"))
    assert isinstance(error, InvalidScope)


def test_authorization_details_are_refused_rfc9396() -> None:
    assert invalid_grant(form(id_jag(authorization_details=[{"type": "x"}]))) == (
        "authorization_details"
    )
    error = refusal(form(id_jag(), authorization_details="[]"))
    assert isinstance(error, InvalidRequest)


def test_an_unknown_subject_is_invalid_grant_and_resolved_last() -> None:
    assert invalid_grant(form(id_jag(sub="00u-unknown"))) == "unknown_subject"


@pytest.mark.parametrize(
    ("assertion", "reason"),
    [
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
        ("x" * 9000, "too_large"),
        (
            sign(
                {"alg": "ES256", "typ": ID_JAG_TYP, "kid": "idp-1", "crit": ["exp"]},
                claims(),
                IDP_KEY,
            ),
            "crit",
        ),
        (sign({"alg": "ES256", "typ": ID_JAG_TYP, "kid": "idp-1"}, b"[1]", IDP_KEY), "malformed"),
        (
            sign(
                {"alg": "ES256", "typ": ID_JAG_TYP, "kid": "idp-1"},
                b'{"iss":"a","iss":"b"}',
                IDP_KEY,
            ),
            "malformed",
        ),
    ],
)
def test_malformed_assertions_rfc7523_3(assertion: str, reason: str) -> None:
    assert invalid_grant(form(assertion)) == reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sub": None}, "missing_sub"),
        ({"sub": ""}, "bad_sub"),
        ({"exp": None}, "missing_exp"),
        ({"exp": "soon"}, "bad_exp"),
        ({"iat": None}, "missing_iat"),
        ({"iat": True}, "bad_iat"),
        ({"scope": 7}, "bad_scope"),
        ({"cnf": "x"}, "bad_cnf"),
        ({"resource": [1]}, "bad_resource"),
    ],
)
def test_claim_types_rfc7523_3(changes: dict[str, Any], reason: str) -> None:
    assert invalid_grant(form(id_jag(**changes))) == reason


# -- clients and parameters ------------------------------------------------------------------


def test_a_public_client_cannot_use_the_grant() -> None:
    public = Client(
        client_id="mcp-client", token_endpoint_auth_method="none", grant_types=(GRANT_TYPE,)
    )
    error = refusal(form(id_jag()), client=public)
    assert isinstance(error, UnauthorizedClient)


def test_a_client_not_registered_for_the_grant_is_unauthorized() -> None:
    error = refusal(form(id_jag()), client=Client(client_id="mcp-client"))
    assert isinstance(error, UnauthorizedClient)
    assert error.reason == "grant_not_registered"


def test_the_assertion_parameter_is_required_and_single_rfc6749_3_2() -> None:
    error = refusal({"grant_type": [GRANT_TYPE]})
    assert isinstance(error, InvalidRequest)
    assert error.reason == "missing_assertion"
    twice = refusal({"grant_type": [GRANT_TYPE], "assertion": [id_jag(), id_jag()]})
    assert twice.reason == "repeated_parameter"


# -- D9 binding ------------------------------------------------------------------------------


def test_a_cnf_jkt_needs_the_same_dpop_key_and_binds_the_token_d9() -> None:
    bound = id_jag(cnf={"jkt": JKT})
    error = refusal(form(bound))
    assert isinstance(error, InvalidDPoPProof)
    result = grant(form(id_jag(cnf={"jkt": JKT})), presented=PresentedKeys(dpop_jkt=JKT))
    assert result.token_type == "DPoP"
    assert result.claims.cnf == {"jkt": JKT}


def test_a_failed_binding_does_not_burn_the_jti() -> None:
    assertion = id_jag(cnf={"jkt": JKT}, jti="kept-on-failure")
    with pytest.raises(InvalidDPoPProof):
        grant(form(assertion))
    assert grant(form(assertion), presented=PresentedKeys(dpop_jkt=JKT)).token_type == "DPoP"


# -- the host policy -------------------------------------------------------------------------


class Policy:
    def __init__(self, answer: Sequence[str] | None) -> None:
        self.answer = answer

    def authorize_assertion(
        self, client: Client, assertion: VerifiedAssertion, scopes: tuple[str, ...], audience: str
    ) -> Sequence[str] | None:
        return self.answer


def test_the_policy_narrows_refuses_and_cannot_broaden() -> None:
    assert grant(form(id_jag()), policy=Policy(["tools:read"])).claims.scopes == ("tools:read",)
    refused = id_jag(jti="policy-refused")
    assert invalid_grant(form(refused), policy=Policy(None)) == "policy"
    assert grant(form(refused)).claims.subject == "alice"  # the refusal did not burn the jti
    error = refusal(form(id_jag()), policy=Policy(["admin"]))
    assert isinstance(error, InvalidScope)


# -- plain RFC 7523 assertions ---------------------------------------------------------------

PLAIN = TrustedIssuer(issuer=IDP, jwks=IDP_JWKS, id_jag=False, jwt_bearer=True)


@pytest.mark.parametrize("typ", [None, "JWT"])
def test_a_plain_assertion_from_an_issuer_configured_for_it_rfc7523_2_1(typ: str | None) -> None:
    assertion = id_jag(typ=typ, client_id=None, jti=None, iat=None, resource=None)
    result = grant(form(assertion, resource=MCP), trusted_issuers={IDP: PLAIN})
    assert result.assertion.profile == "jwt_bearer"
    assert result.claims.audience == MCP


def test_a_plain_assertion_may_name_the_token_endpoint_rfc7523_3_3() -> None:
    assertion = id_jag(typ="JWT", aud=[TOKEN_ENDPOINT, "https://x.example"], resource=None)
    assert grant(form(assertion), trusted_issuers={IDP: PLAIN}).claims.subject == "alice"


def test_a_plain_assertion_for_another_server_is_refused_rfc7523_3_3() -> None:
    assertion = id_jag(typ="JWT", aud="https://other-as.example")
    assert invalid_grant(form(assertion), trusted_issuers={IDP: PLAIN}) == "wrong_aud"


def test_an_id_jag_from_a_plain_only_issuer_is_refused() -> None:
    assert invalid_grant(form(id_jag()), trusted_issuers={IDP: PLAIN}) == "wrong_typ"


def test_a_plain_assertion_with_a_jti_is_single_use_rfc7523_3_7() -> None:
    assertion = id_jag(typ="JWT", jti="plain-1", resource=None)
    grant(form(assertion), trusted_issuers={IDP: PLAIN})
    assert invalid_grant(form(assertion), trusted_issuers={IDP: PLAIN}) == "replay"


# -- issuers and their keys ------------------------------------------------------------------


def test_trusted_issuer_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TrustedIssuer(issuer=IDP)
    with pytest.raises(ValueError, match="exactly one"):
        TrustedIssuer(issuer=IDP, jwks=IDP_JWKS, jwks_uri="https://idp.example/jwks")
    with pytest.raises(ValueError, match="asymmetric"):
        TrustedIssuer(issuer=IDP, jwks=IDP_JWKS, algorithms=frozenset({"HS256"}))
    with pytest.raises(ValueError, match="enable"):
        TrustedIssuer(issuer=IDP, jwks=IDP_JWKS, id_jag=False)
    with pytest.raises(ValueError, match="another name"):
        config(trusted_issuers={OTHER_IDP: TrustedIssuer(issuer=IDP, jwks=IDP_JWKS)})


class JWKSFetcher:
    def __init__(self) -> None:
        self.keys = [public_jwk(IDP_KEY, "idp-1")]
        self.fetched = 0
        self.failing = False

    def fetch(self, url: str) -> FetchedDocument:
        self.fetched += 1
        if self.failing:
            raise FetchRefused("timeout")
        body = json.dumps({"keys": self.keys}).encode()
        return FetchedDocument(url=url, body=body, headers={"cache-control": "max-age=600"})


def test_a_jwks_uri_is_fetched_cached_and_refetched_once_for_a_new_kid() -> None:
    fetcher = JWKSFetcher()
    remote = TrustedIssuer(issuer=IDP, jwks_uri="https://idp.example/jwks")
    settings = {
        "trusted_issuers": {IDP: remote},
        "keys": RemoteIssuerKeys(RemoteKeySets(fetcher, CLOCK)),
    }
    grant(form(id_jag()), **settings)
    grant(form(id_jag()), **settings)
    assert fetcher.fetched == 1
    fetcher.keys.append(public_jwk(ROTATED_KEY, "idp-2"))
    assert grant(form(id_jag(ROTATED_KEY, "idp-2")), **settings).claims.subject == "alice"
    assert fetcher.fetched == 2
    # A second unknown kid within the refresh interval does not refetch.
    assert invalid_grant(form(id_jag(ATTACKER_KEY, "idp-3")), **settings) == "bad_signature"
    assert fetcher.fetched == 2


def test_a_failing_jwks_uri_keeps_serving_the_last_good_set() -> None:
    fetcher = JWKSFetcher()
    keys = RemoteIssuerKeys(RemoteKeySets(fetcher, CLOCK, floor=60, ceiling=3600))
    remote = TrustedIssuer(issuer=IDP, jwks_uri="https://idp.example/jwks")
    settings = {"trusted_issuers": {IDP: remote}, "keys": keys}
    grant(form(id_jag()), **settings)
    fetcher.failing = True
    CLOCK.advance(700)
    try:
        assert grant(form(id_jag()), **settings).claims.subject == "alice"
    finally:
        CLOCK.advance(-700)


def test_an_unreachable_jwks_uri_without_a_past_set_is_invalid_grant() -> None:
    fetcher = JWKSFetcher()
    fetcher.failing = True
    remote = TrustedIssuer(issuer=IDP, jwks_uri="https://idp.example/jwks")
    settings = {
        "trusted_issuers": {IDP: remote},
        "keys": RemoteIssuerKeys(RemoteKeySets(fetcher, CLOCK)),
    }
    assert invalid_grant(form(id_jag()), **settings) == "issuer_keys_unavailable"
