"""Token exchange (RFC 8693) and the sender-constraint rule (DESIGN.md D9): narrowing of
audience, resource and scope, delegation with ``act`` and ``may_act``, bound subject
tokens, the host policy and every refusal with its RFC 8693 §2.2.2 error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pyramid_attesto.core.binding import PresentedKeys, bind_token
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
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.scopes import ScopeCatalog
from pyramid_attesto.core.token_exchange import (
    ACCESS_TOKEN_TYPE,
    GRANT_TYPE,
    ID_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    ExchangeRequest,
    OwnAccessTokens,
    TokenExchangeConfig,
    TokenExchangeGrant,
    ValidatedToken,
    exchange_token,
)
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter, AccessTokenVerifier
from pyramid_attesto.storage import MemoryStorage

ISSUER = "https://as.example"
API = "https://api.example"
REPORTS = "https://reports.example"
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
OTHER_JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
X5T = "A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0"

CLOCK = FrozenClock()
KEYSTORE = StaticKeystore([private_signer(generate_key("ES256"))])
MINTER = AccessTokenMinter(KEYSTORE, issuer=ISSUER, clock=CLOCK)
VERIFIER = AccessTokenVerifier(KEYSTORE, issuer=ISSUER, audience=[API, REPORTS], clock=CLOCK)
REVOKED = MemoryStorage(CLOCK).revoked_access_tokens

SERVICE = Client(
    client_id="api-service",
    grant_types=("client_credentials", GRANT_TYPE),
    response_types=(),
)


def token(
    *,
    audience: str = API,
    scopes: tuple[str, ...] = ("read:reports", "write:reports"),
    cnf: dict[str, str] | None = None,
    subject: str = "alice",
    client_id: str = "web-app",
    extra: dict[str, Any] | None = None,
    lifetime: int | None = None,
) -> str:
    claims = AccessTokenClaims(
        subject=subject,
        client_id=client_id,
        audience=audience,
        scopes=scopes,
        cnf=cnf,
        principal_kind="user",
        auth_time=int(CLOCK.now()) - 60,
        acr="urn:mace:incommon:iap:silver",
        extra=extra or {},
    )
    return MINTER.mint(claims, lifetime=lifetime).token


def config(**overrides: Any) -> TokenExchangeConfig:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "validators": {ACCESS_TOKEN_TYPE: OwnAccessTokens(VERIFIER, REVOKED)},
        "catalog": ScopeCatalog.of(["read:reports", "write:reports", "read:audit"]),
    }
    settings.update(overrides)
    return TokenExchangeConfig(**settings)


def form(subject_token: str, **params: str | list[str]) -> dict[str, list[str]]:
    body: dict[str, list[str]] = {
        "grant_type": [GRANT_TYPE],
        "subject_token": [subject_token],
        "subject_token_type": [ACCESS_TOKEN_TYPE],
    }
    for name, value in params.items():
        body[name] = value if isinstance(value, list) else [value]
    return body


def exchange(
    body: dict[str, list[str]],
    *,
    client: Client = SERVICE,
    presented: PresentedKeys | None = None,
    **overrides: Any,
) -> TokenExchangeGrant:
    return exchange_token(
        body, client, config(**overrides), presented=presented or PresentedKeys(), clock=CLOCK
    )


def refusal(body: dict[str, list[str]], **kwargs: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        exchange(body, **kwargs)
    return caught.value


# -- success ---------------------------------------------------------------------------------


def test_an_exchange_keeps_subject_audience_and_scope_rfc8693_2_1() -> None:
    grant = exchange(form(token()))
    assert grant.issued_token_type == ACCESS_TOKEN_TYPE
    assert grant.token_type == "Bearer"
    claims = grant.claims
    assert (claims.subject, claims.client_id, claims.audience) == ("alice", "api-service", API)
    assert claims.scopes == ("read:reports", "write:reports")
    assert claims.principal_kind == "user"
    assert claims.acr == "urn:mace:incommon:iap:silver"
    assert claims.cnf is None
    assert "act" not in claims.extra
    assert grant.max_lifetime == 900


def test_scope_is_narrowed_rfc8693_2_1() -> None:
    grant = exchange(form(token(), scope="read:reports"))
    assert grant.claims.scopes == ("read:reports",)


def test_a_wildcard_subject_scope_narrows_to_a_catalog_scope() -> None:
    grant = exchange(form(token(scopes=("read:*",)), scope="read:audit"))
    assert grant.claims.scopes == ("read:audit",)


def test_a_broader_scope_is_invalid_scope_rfc8693_2_1() -> None:
    error = refusal(form(token(), scope="read:reports admin"))
    assert isinstance(error, InvalidScope)
    assert error.reason == "broader_than_grant"


@pytest.mark.parametrize("parameter", ["resource", "audience"])
def test_a_target_within_the_subject_audience_is_kept_rfc8693_2_1(parameter: str) -> None:
    grant = exchange(form(token(), **{parameter: API}))
    assert grant.claims.audience == API


@pytest.mark.parametrize("parameter", ["resource", "audience"])
def test_a_target_outside_the_subject_audience_is_invalid_target_rfc8693_2_2_2(
    parameter: str,
) -> None:
    error = refusal(form(token(), **{parameter: REPORTS}))
    assert isinstance(error, InvalidTarget)
    assert error.reason == "broader_than_subject"


def test_two_targets_are_invalid_target_rule_8() -> None:
    error = refusal(form(token(), resource=API, audience=REPORTS))
    assert isinstance(error, InvalidTarget)
    assert error.reason == "multiple_targets"


def test_the_same_target_twice_is_one_target() -> None:
    assert exchange(form(token(), resource=API, audience=API)).claims.audience == API


def test_the_new_token_never_outlives_the_subject_token() -> None:
    grant = exchange(form(token(lifetime=120)))
    assert grant.max_lifetime == 120


# -- delegation: act and may_act (RFC 8693 §4.1, §4.4) ---------------------------------------


def test_an_actor_token_adds_act_rfc8693_4_1() -> None:
    actor = token(subject="agent-7", client_id="agent-app", scopes=("read:reports",))
    grant = exchange(
        form(token(), actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE),
    )
    assert grant.claims.subject == "alice"
    assert grant.claims.extra["act"] == {"sub": "agent-7", "client_id": "agent-app"}
    assert grant.actor is not None


def test_a_prior_delegation_chain_is_nested_rfc8693_4_1() -> None:
    subject = token(extra={"act": {"sub": "first-agent"}})
    actor = token(subject="second-agent", client_id="agent-app")
    grant = exchange(form(subject, actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE))
    assert grant.claims.extra["act"] == {
        "sub": "second-agent",
        "client_id": "agent-app",
        "act": {"sub": "first-agent"},
    }


def test_without_an_actor_the_subject_act_is_kept() -> None:
    grant = exchange(form(token(extra={"act": {"sub": "agent-1"}})))
    assert grant.claims.extra["act"] == {"sub": "agent-1"}


def test_a_delegation_chain_is_bounded() -> None:
    chain: dict[str, Any] = {"sub": "a0"}
    for i in range(1, 9):
        chain = {"sub": f"a{i}", "act": chain}
    actor = token(subject="next", client_id="agent-app")
    error = refusal(
        form(token(extra={"act": chain}), actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE)
    )
    assert error.reason == "act_too_deep"


def test_may_act_allows_the_named_actor_rfc8693_4_4() -> None:
    subject = token(extra={"may_act": {"sub": "agent-7"}})
    actor = token(subject="agent-7", client_id="agent-app")
    grant = exchange(form(subject, actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE))
    assert grant.claims.extra["act"]["sub"] == "agent-7"


def test_may_act_refuses_another_actor_rfc8693_4_4() -> None:
    subject = token(extra={"may_act": {"sub": "agent-7"}})
    actor = token(subject="agent-8", client_id="agent-app")
    error = refusal(form(subject, actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE))
    assert isinstance(error, InvalidRequest)
    assert error.reason == "may_act"


def test_may_act_with_an_issuer_must_match_it_too_rfc8693_4_4() -> None:
    subject = token(extra={"may_act": {"sub": "agent-7", "iss": "https://idp.example"}})
    actor = token(subject="agent-7", client_id="agent-app")
    error = refusal(form(subject, actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE))
    assert error.reason == "may_act"


def test_may_act_without_actor_token_names_the_requesting_client_rfc8693_4_4() -> None:
    allowed = token(extra={"may_act": {"client_id": "api-service"}})
    assert exchange(form(allowed)).claims.client_id == "api-service"
    refused = token(extra={"may_act": {"sub": "someone-else"}})
    assert refusal(form(refused)).reason == "may_act"


def test_may_act_with_no_known_member_refuses() -> None:
    assert refusal(form(token(extra={"may_act": {"email": "x@y"}}))).reason == "may_act"


def test_a_malformed_may_act_is_invalid_request() -> None:
    error = refusal(form(token(extra={"may_act": "agent-7"})))
    assert isinstance(error, InvalidRequest)
    assert error.reason == "subject_bad_may_act"


# -- D9: bound subject tokens --------------------------------------------------------------


def test_a_dpop_bound_subject_needs_the_same_key_and_yields_a_dpop_token_d9() -> None:
    body = form(token(cnf={"jkt": JKT}))
    grant = exchange(body, presented=PresentedKeys(dpop_jkt=JKT))
    assert grant.token_type == "DPoP"
    assert grant.claims.cnf == {"jkt": JKT}


def test_a_dpop_bound_subject_without_a_proof_is_refused_d9_rfc9449_5() -> None:
    error = refusal(form(token(cnf={"jkt": JKT})))
    assert isinstance(error, InvalidDPoPProof)
    assert error.reason == "dpop_required"


def test_a_dpop_bound_subject_with_another_key_is_refused_d9_rfc9449_5() -> None:
    error = refusal(form(token(cnf={"jkt": JKT})), presented=PresentedKeys(dpop_jkt=OTHER_JKT))
    assert isinstance(error, InvalidDPoPProof)
    assert error.reason == "jkt_mismatch"


def test_a_certificate_bound_subject_needs_the_same_certificate_d9_rfc8705_3() -> None:
    body = form(token(cnf={"x5t#S256": X5T}))
    grant = exchange(body, presented=PresentedKeys(certificate_thumbprint=X5T))
    assert grant.token_type == "Bearer"
    assert grant.claims.cnf == {"x5t#S256": X5T}
    assert refusal(body).reason == "certificate_required"
    mismatch = refusal(body, presented=PresentedKeys(certificate_thumbprint="B" * 43))
    assert isinstance(mismatch, InvalidGrant)
    assert mismatch.reason == "certificate_mismatch"


def test_a_bound_actor_token_needs_its_key_too_d9() -> None:
    actor = token(subject="agent", client_id="agent-app", cnf={"jkt": OTHER_JKT})
    body = form(token(cnf={"jkt": JKT}), actor_token=actor, actor_token_type=ACCESS_TOKEN_TYPE)
    error = refusal(body, presented=PresentedKeys(dpop_jkt=JKT))
    assert error.reason == "jkt_mismatch"


def test_an_unbound_subject_with_a_proof_yields_a_dpop_token_rfc9449_5() -> None:
    grant = exchange(form(token()), presented=PresentedKeys(dpop_jkt=JKT))
    assert grant.token_type == "DPoP"
    assert grant.claims.cnf == {"jkt": JKT}


# -- refusals --------------------------------------------------------------------------------


def test_a_public_client_cannot_exchange_rfc8693_2_1() -> None:
    public = Client(
        client_id="spa",
        token_endpoint_auth_method="none",
        grant_types=("authorization_code", GRANT_TYPE),
    )
    error = refusal(form(token()), client=public)
    assert isinstance(error, UnauthorizedClient)
    assert error.reason == "public_client"


def test_a_client_not_registered_for_the_grant_is_unauthorized_rfc6749_5_2() -> None:
    error = refusal(form(token()), client=Client(client_id="plain"))
    assert isinstance(error, UnauthorizedClient)
    assert error.reason == "grant_not_registered"


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        ("subject_token", "missing_subject_token"),
        ("subject_token_type", "missing_subject_token_type"),
    ],
)
def test_required_parameters_rfc8693_2_1(drop: str, reason: str) -> None:
    body = form(token())
    del body[drop]
    error = refusal(body)
    assert isinstance(error, InvalidRequest)
    assert error.reason == reason


def test_a_repeated_parameter_is_invalid_request_rfc6749_3_2() -> None:
    body = form(token())
    body["subject_token"].append("again")
    assert refusal(body).reason == "repeated_parameter"


@pytest.mark.parametrize(
    "params",
    [{"actor_token": "x"}, {"actor_token_type": ACCESS_TOKEN_TYPE}],
)
def test_actor_token_and_its_type_go_together_rfc8693_2_1(params: dict[str, str]) -> None:
    assert refusal(form(token(), **params)).reason == "actor_pair"


@pytest.mark.parametrize(
    "token_type",
    [ID_TOKEN_TYPE, JWT_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:saml2", "bogus"],
)
def test_an_unsupported_subject_token_type_is_invalid_request_rfc8693_2_2_2(
    token_type: str,
) -> None:
    body = form(token())
    body["subject_token_type"] = [token_type]
    error = refusal(body)
    assert isinstance(error, InvalidRequest)
    assert error.reason == "unsupported_token_type"


def test_an_unsupported_actor_token_type_is_invalid_request_rfc8693_2_2_2() -> None:
    error = refusal(form(token(), actor_token="x", actor_token_type=ID_TOKEN_TYPE))
    assert error.reason == "unsupported_token_type"


@pytest.mark.parametrize(
    "requested",
    [ID_TOKEN_TYPE, JWT_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:refresh_token"],
)
def test_only_access_tokens_are_issued_rfc8693_2_2_2(requested: str) -> None:
    error = refusal(form(token(), requested_token_type=requested))
    assert error.reason == "unsupported_requested_token_type"


def test_an_explicit_access_token_request_is_fine() -> None:
    grant = exchange(form(token(), requested_token_type=ACCESS_TOKEN_TYPE))
    assert grant.issued_token_type == ACCESS_TOKEN_TYPE


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("not-a-jwt", "subject_malformed"),
        (token(audience="https://elsewhere.example"), "subject_wrong_audience"),
    ],
)
def test_an_invalid_subject_token_is_invalid_request_rfc8693_2_2_2(
    subject: str, reason: str
) -> None:
    error = refusal(form(subject))
    assert isinstance(error, InvalidRequest)
    assert error.status == 400
    assert error.reason == reason


def test_an_expired_subject_token_is_invalid_request_rfc8693_2_2_2() -> None:
    subject = token(lifetime=60)
    CLOCK.advance(120)
    try:
        error = refusal(form(subject))
    finally:
        CLOCK.advance(-120)
    assert error.reason == "subject_expired"


def test_a_revoked_subject_token_is_invalid_request_d12() -> None:
    subject = token()
    REVOKED.add(VERIFIER.verify(subject).jti, int(CLOCK.now()) + 900)
    assert refusal(form(subject)).reason == "subject_revoked"


def test_an_invalid_actor_token_is_invalid_request_rfc8693_2_2_2() -> None:
    error = refusal(form(token(), actor_token="junk", actor_token_type=ACCESS_TOKEN_TYPE))
    assert error.reason == "actor_malformed"


def test_a_subject_with_several_audiences_needs_a_target() -> None:
    class Multi:
        def __call__(self, token: str, token_type: str) -> ValidatedToken:
            return ValidatedToken(
                token_type=token_type, subject="bob", issuer=ISSUER, audience=(API, REPORTS)
            )

    validators = {ID_TOKEN_TYPE: Multi()}
    body = form("opaque")
    body["subject_token_type"] = [ID_TOKEN_TYPE]
    assert refusal(body, validators=validators).reason == "ambiguous_target"
    grant = exchange({**body, "resource": [REPORTS]}, validators=validators)
    assert grant.claims.audience == REPORTS
    assert grant.max_lifetime is None


# -- the host policy -------------------------------------------------------------------------


class Policy:
    def __init__(self, answer: Sequence[str] | None) -> None:
        self.answer = answer
        self.seen: list[ExchangeRequest] = []

    def authorize_exchange(self, client: Client, exchange: ExchangeRequest) -> Sequence[str] | None:
        self.seen.append(exchange)
        return self.answer


def test_the_policy_may_narrow_the_scope() -> None:
    policy = Policy(["read:reports"])
    grant = exchange(form(token()), policy=policy)
    assert grant.claims.scopes == ("read:reports",)
    assert policy.seen[0].audience == API
    assert policy.seen[0].subject.subject == "alice"


def test_the_policy_may_refuse_rfc8693_2_2_2() -> None:
    error = refusal(form(token()), policy=Policy(None))
    assert isinstance(error, InvalidRequest)
    assert error.reason == "policy"


def test_the_policy_cannot_broaden_the_scope() -> None:
    error = refusal(form(token()), policy=Policy(["read:reports", "admin"]))
    assert isinstance(error, InvalidScope)
    assert error.reason == "policy"


# -- the binding rule on its own -----------------------------------------------------------


@pytest.mark.parametrize(
    "cnf",
    [
        {},
        {"jkt": JKT, "x5t#S256": X5T},
        {"jwk": {"kty": "EC"}},
        {"jkt": "short"},
        {"jkt": 42},
        "jkt",
    ],
)
def test_an_unknown_confirmation_is_refused_not_dropped_d9(cnf: Any) -> None:
    with pytest.raises(InvalidGrant) as caught:
        bind_token([cnf], PresentedKeys(dpop_jkt=JKT), SERVICE)
    assert caught.value.reason == "unsupported_cnf"


def test_two_kinds_of_binding_conflict_d9() -> None:
    with pytest.raises(InvalidGrant) as caught:
        bind_token(
            [{"jkt": JKT}, {"x5t#S256": X5T}],
            PresentedKeys(dpop_jkt=JKT, certificate_thumbprint=X5T),
            SERVICE,
        )
    assert caught.value.reason == "conflicting_cnf"


def test_a_dpop_proof_on_a_certificate_bound_grant_is_refused() -> None:
    with pytest.raises(InvalidDPoPProof) as caught:
        bind_token(
            [{"x5t#S256": X5T}],
            PresentedKeys(dpop_jkt=JKT, certificate_thumbprint=X5T),
            SERVICE,
        )
    assert caught.value.reason == "dpop_unexpected"


def test_client_registration_flags_apply_without_a_bound_input_rfc9449_5_rfc8705_3() -> None:
    dpop_client = Client(client_id="d", dpop_bound_access_tokens=True)
    with pytest.raises(InvalidDPoPProof):
        bind_token([None], PresentedKeys(), dpop_client)
    mtls_client = Client(client_id="m", tls_client_certificate_bound_access_tokens=True)
    with pytest.raises(InvalidRequest):
        bind_token([None], PresentedKeys(), mtls_client)
    bound = bind_token([None], PresentedKeys(certificate_thumbprint=X5T), mtls_client)
    assert bound.cnf == {"x5t#S256": X5T}
    assert bound.token_type == "Bearer"
    assert bind_token([], PresentedKeys(certificate_thumbprint=X5T), SERVICE).cnf is None
