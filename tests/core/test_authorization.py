"""Authorization request validation: the order of DESIGN.md rule 5 (local errors before the
client and redirect URI are validated, redirectable ones after) and each parameter's rule."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from authz_jose_helpers import public_jwk, sign
from cryptography.hazmat.primitives.asymmetric import ec

from pyramid_attesto.core.authorization import (
    PAR_REQUEST_URI_PREFIX,
    AuthorizationPolicy,
    AuthorizationRequest,
    AuthorizationRequestValidator,
    LocalAuthorizationError,
    PushedReference,
    RedirectableAuthorizationError,
    parse_pushed_reference,
    request_object_parameters,
    resolve_pushed_request,
)
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidClient,
    InvalidRequest,
    InvalidRequestObject,
    InvalidRequestURI,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    RequestNotSupported,
    RequestURINotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from pyramid_attesto.core.pkce import challenge_for
from pyramid_attesto.core.request_objects import RequestObjectPolicy
from pyramid_attesto.core.scopes import ScopeCatalog

ISSUER = "https://as.example"
CHALLENGE = challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
RESOURCE = "https://api.example/mcp"
NOW = 1_700_000_000
CLIENT_KEY = ec.generate_private_key(ec.SECP256R1())
CATALOG = ScopeCatalog.of(["openid", "profile", "read:reports", "write:reports", "offline_access"])

CLIENTS = {
    client.client_id: client
    for client in (
        Client(client_id="web", redirect_uris=["https://app.example/cb"]),
        Client(
            client_id="multi",
            redirect_uris=["https://app.example/cb", "https://app.example/other"],
        ),
        Client(
            client_id="native",
            token_endpoint_auth_method="none",
            application_type="native",
            redirect_uris=["http://127.0.0.1/cb", "http://localhost/cb"],
            scope="read:reports profile",
        ),
        Client(
            client_id="par",
            redirect_uris=["https://app.example/cb"],
            require_pushed_authorization_requests=True,
        ),
        Client(
            client_id="jar",
            token_endpoint_auth_method="private_key_jwt",
            redirect_uris=["https://jar.example/cb"],
            jwks={"keys": [public_jwk(CLIENT_KEY, "k1")]},
        ),
        Client(
            client_id="m2m",
            redirect_uris=["https://app.example/cb"],
            grant_types=["client_credentials"],
            response_types=[],
        ),
    )
}


class Store:
    def load_client(self, client_id: str) -> Client | None:
        return CLIENTS.get(client_id)

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        return False

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return None


def make_policy(**overrides: Any) -> AuthorizationPolicy:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "scopes": CATALOG,
        "resources": frozenset({RESOURCE}),
        "request_objects": RequestObjectPolicy.generic(),
    }
    settings.update(overrides)
    return AuthorizationPolicy(**settings)


def validator(**overrides: Any) -> AuthorizationRequestValidator:
    return AuthorizationRequestValidator(
        make_policy(**overrides), clients=Store(), clock=FrozenClock(NOW)
    )


def params(**changes: str | list[str] | None) -> dict[str, list[str]]:
    base: dict[str, str | list[str] | None] = {
        "response_type": "code",
        "client_id": "web",
        "redirect_uri": "https://app.example/cb",
        "scope": "profile",
        "state": "af0ifjsldkj",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    base.update(changes)
    result: dict[str, list[str]] = {}
    for name, value in base.items():
        if value is None:
            continue
        result[name] = value if isinstance(value, list) else [value]
    return result


def local_error(p: Mapping[str, list[str]], **kw: Any) -> LocalAuthorizationError:
    with pytest.raises(LocalAuthorizationError) as info:
        validator(**kw).validate(p)
    return info.value


def redirect_error(p: Mapping[str, list[str]], **kw: Any) -> RedirectableAuthorizationError:
    with pytest.raises(RedirectableAuthorizationError) as info:
        validator(**kw).validate(p)
    return info.value


# -- success -----------------------------------------------------------------------------------


def test_a_valid_request_rfc6749_4_1_1() -> None:
    request = validator().validate(params())
    assert request == AuthorizationRequest(
        client_id="web",
        redirect_uri="https://app.example/cb",
        redirect_uri_explicit=True,
        scopes=("profile",),
        state="af0ifjsldkj",
        code_challenge=CHALLENGE,
    )
    assert request.code_challenge_method == "S256"
    assert request.response_mode == "query"
    assert not request.openid


def test_the_only_registered_redirect_uri_is_the_default_rfc6749_3_1_2_3() -> None:
    request = validator().validate(params(redirect_uri=None))
    assert request.redirect_uri == "https://app.example/cb"
    assert request.redirect_uri_explicit is False


def test_native_loopback_any_port_rfc8252_7_3() -> None:
    request = validator().validate(
        params(client_id="native", redirect_uri="http://127.0.0.1:51004/cb", scope="read:reports")
    )
    assert request.redirect_uri == "http://127.0.0.1:51004/cb"


def test_localhost_loopback_can_be_turned_off_rfc8252_8_3() -> None:
    p = params(client_id="native", redirect_uri="http://localhost:5000/cb", scope="profile")
    assert validator().validate(p).redirect_uri == "http://localhost:5000/cb"
    assert local_error(p, allow_localhost=False).reason == "redirect_uri_mismatch"


def test_missing_scope_gets_the_registered_scope_rfc6749_3_3() -> None:
    request = validator().validate(
        params(client_id="native", redirect_uri="http://127.0.0.1/cb", scope=None)
    )
    assert request.scopes == ("read:reports", "profile")


def test_missing_scope_gets_the_configured_default_rfc6749_3_3() -> None:
    request = validator(default_scopes=("profile",)).validate(params(scope=None))
    assert request.scopes == ("profile",)


def test_an_empty_parameter_is_an_omitted_one_rfc6749_3_1() -> None:
    request = validator(default_scopes=("profile",)).validate(params(scope="", state=""))
    assert request.scopes == ("profile",)
    assert request.state is None


def test_unknown_parameters_are_ignored_rfc6749_3_1() -> None:
    request = validator().validate(params(foo=["1", "2"]))
    assert request.client_id == "web"


def test_the_openid_parameters_oidc_core_3_1_2_1() -> None:
    claims = {"id_token": {"acr": {"essential": True}}, "userinfo": None}
    request = validator(claims_parameter_supported=True).validate(
        params(
            scope="openid profile",
            nonce="n-0S6_WzA2Mj",
            prompt="login consent",
            max_age="0",
            claims=json.dumps(claims),
            acr_values="urn:mace:incommon:iap:silver loa-2",
            login_hint="alice@example.com",
            ui_locales="fr-CA en",
        )
    )
    assert request.openid
    assert request.nonce == "n-0S6_WzA2Mj"
    assert request.prompt == frozenset({"login", "consent"})
    assert request.max_age == 0
    assert request.claims is not None
    assert request.claims["id_token"]["acr"]["essential"] is True
    assert request.acr_values == ("urn:mace:incommon:iap:silver", "loa-2")
    assert request.login_hint == "alice@example.com"
    assert request.ui_locales == ("fr-CA", "en")


def test_claims_is_ignored_when_unsupported_oidc_core_5_5() -> None:
    request = validator().validate(params(claims="not json"))
    assert request.claims is None


def test_resources_one_or_more_rfc8707_2() -> None:
    other = "https://api.example/other"
    allowed = validator(resource_allowed=lambda client, uri: uri == other)
    request = allowed.validate(params(resource=[RESOURCE, other, RESOURCE]))
    assert request.resources == (RESOURCE, other)


def test_dpop_jkt_rfc9449_10() -> None:
    assert validator().validate(params(dpop_jkt=JKT)).dpop_jkt == JKT


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (None, "query"),
        ("query", "query"),
        ("form_post", "form_post"),
        ("jwt", "query.jwt"),  # JARM §2.3.4: jwt is query.jwt for response_type=code
        ("query.jwt", "query.jwt"),
        ("fragment.jwt", "fragment.jwt"),
        ("form_post.jwt", "form_post.jwt"),
    ],
)
def test_response_modes_jarm_2_3(mode: str | None, expected: str) -> None:
    modes = frozenset({"query", "form_post", "jwt", "query.jwt", "fragment.jwt", "form_post.jwt"})
    request = validator(response_modes=modes).validate(params(response_mode=mode))
    assert request.response_mode == expected


def test_pkce_can_be_relaxed_for_confidential_clients_only_rfc9700_2_1_1() -> None:
    relaxed = validator(require_pkce_for_confidential_clients=False)
    request = relaxed.validate(params(code_challenge=None, code_challenge_method=None))
    assert request.code_challenge is None
    error = redirect_error(
        params(
            client_id="native",
            redirect_uri="http://127.0.0.1/cb",
            code_challenge=None,
            code_challenge_method=None,
        ),
        require_pkce_for_confidential_clients=False,
    )
    assert error.reason == "pkce_required"


# -- local errors (never redirected) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "cause", "reason"),
    [
        # RFC 6749 §4.1.2.1: a missing or invalid client identifier is not redirected
        ({"client_id": None}, InvalidRequest, "missing_client_id"),
        ({"client_id": ["web", "web"]}, InvalidRequest, "repeated_parameter"),
        ({"client_id": "nobody"}, InvalidClient, "unknown_client"),
        ({"client_id": "we\tb"}, InvalidRequest, "malformed_client_id"),
        # RFC 6749 §3.1.2.3, RFC 9700 §4.1.3: exact match against the registration
        ({"redirect_uri": "https://evil.example/cb"}, InvalidRequest, "redirect_uri_mismatch"),
        ({"redirect_uri": "https://app.example/cb/"}, InvalidRequest, "redirect_uri_mismatch"),
        ({"redirect_uri": "https://app.example/cb?x=1"}, InvalidRequest, "redirect_uri_mismatch"),
        ({"redirect_uri": "https://APP.example/cb"}, InvalidRequest, "redirect_uri_mismatch"),
        ({"redirect_uri": "https://app.example/cb#f"}, InvalidRequest, "redirect_uri_mismatch"),
        (
            {"redirect_uri": "https://app.example@evil.example/cb"},
            InvalidRequest,
            "redirect_uri_mismatch",
        ),
        (
            {"redirect_uri": ["https://app.example/cb", "https://app.example/cb"]},
            InvalidRequest,
            "repeated_parameter",
        ),
        # OIDC Core §3.1.2.1: redirect_uri is required in an OpenID request
        ({"redirect_uri": None, "scope": "openid"}, InvalidRequest, "missing_redirect_uri"),
        # RFC 6749 §3.1.2.3: several registered, none named
        ({"client_id": "multi", "redirect_uri": None}, InvalidRequest, "missing_redirect_uri"),
        # RFC 9126 §4: a request_uri is resolved before validation
        (
            {"request_uri": PAR_REQUEST_URI_PREFIX + "a" * 32},
            InvalidRequest,
            "request_uri_here",
        ),
        # RFC 9126 §6: the client must push its requests
        ({"client_id": "par"}, InvalidRequest, "par_required"),
        ({"request": ["a.b.c", "d.e.f"]}, InvalidRequest, "repeated_parameter"),
    ],
)
def test_local_errors_rfc6749_4_1_2_1(
    changes: dict[str, Any], cause: type[OAuthError], reason: str
) -> None:
    error = local_error(params(**changes))
    assert isinstance(error.cause, cause)
    assert error.error == cause.error
    assert error.reason == reason
    assert error.status == 400
    assert not isinstance(error, RedirectableAuthorizationError)


def test_a_local_error_is_still_an_oauth_error_rfc6749_4_1_2_1() -> None:
    error = local_error(params(client_id="nobody"))
    assert isinstance(error, OAuthError)
    assert error.to_dict() == {
        "error": "invalid_client",
        "error_description": "the client is unknown",
    }
    assert error.status == 400  # a page, not a 401 without a challenge
    assert "LocalAuthorizationError" in repr(error)


def test_a_bad_redirect_uri_wins_over_every_later_error_rfc6749_4_1_2_1() -> None:
    error = local_error(
        params(redirect_uri="https://evil.example/cb", response_type="token", scope="bogus")
    )
    assert error.reason == "redirect_uri_mismatch"


def test_request_not_supported_without_a_policy_rfc9101_6_3() -> None:
    error = local_error(params(request="a.b.c"), request_objects=None)
    assert isinstance(error.cause, RequestNotSupported)


def test_signed_request_required_rfc9101_10_5() -> None:
    error = local_error(params(), require_signed_request_object=True)
    assert error.reason == "unsigned_request"


def test_par_required_by_policy_rfc9126_6() -> None:
    assert local_error(params(), require_pushed_authorization_requests=True).reason == (
        "par_required"
    )


# -- redirectable errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "cause", "reason"),
    [
        # RFC 6749 §4.1.2.1: invalid_request for a missing or repeated parameter
        ({"response_type": None}, InvalidRequest, "missing_response_type"),
        ({"response_type": ["code", "code"]}, InvalidRequest, "repeated_parameter"),
        ({"scope": ["profile", "openid"]}, InvalidRequest, "repeated_parameter"),
        ({"nonce": ["a", "b"]}, InvalidRequest, "repeated_parameter"),
        ({"code_challenge": [CHALLENGE, CHALLENGE]}, InvalidRequest, "repeated_parameter"),
        # RFC 6749 §4.1.2.1: unsupported_response_type
        ({"response_type": "token"}, UnsupportedResponseType, "response_type"),
        ({"response_type": "code id_token"}, UnsupportedResponseType, "response_type"),
        # RFC 7591 §2: the client did not register the code flow
        ({"client_id": "m2m"}, UnauthorizedClient, "response_type_not_registered"),
        # RFC 6749 §3.3: invalid_scope
        ({"scope": "admin"}, InvalidScope, "unknown_scope"),
        ({"scope": "*"}, InvalidScope, "unknown_scope"),
        ({"scope": 'pro"file'}, InvalidScope, "charset"),
        ({"scope": None}, InvalidScope, "no_scope"),
        # RFC 7636 §4.4.1 and RFC 9700 §2.1.1: PKCE, S256 only
        ({"code_challenge": None, "code_challenge_method": None}, InvalidRequest, "pkce_required"),
        ({"code_challenge_method": "plain"}, InvalidRequest, "pkce_method"),
        ({"code_challenge_method": None}, InvalidRequest, "pkce_method"),
        ({"code_challenge": "short"}, InvalidRequest, "pkce_challenge"),
        # RFC 8707 §2: invalid_target
        ({"resource": "/relative"}, InvalidTarget, "resource_shape"),
        ({"resource": RESOURCE + "#frag"}, InvalidTarget, "resource_shape"),
        ({"resource": "https://other.example/"}, InvalidTarget, "unknown_resource"),
        ({"resource": [RESOURCE] * 17}, InvalidTarget, "too_many_resources"),
        # OIDC Core §3.1.2.1
        ({"prompt": "none login"}, InvalidRequest, "prompt_none_combined"),
        ({"prompt": "sometimes"}, InvalidRequest, "unknown_prompt"),
        ({"prompt": "login  consent"}, InvalidRequest, "malformed_prompt"),
        ({"max_age": "-1"}, InvalidRequest, "malformed_max_age"),
        ({"max_age": "1.5"}, InvalidRequest, "malformed_max_age"),
        ({"max_age": "99999999999"}, InvalidRequest, "malformed_max_age"),
        ({"nonce": "a\nb"}, InvalidRequest, "malformed_nonce"),
        ({"acr_values": "a\tb"}, InvalidRequest, "malformed_acr_values"),
        # RFC 9449 §10: dpop_jkt is a base64url SHA-256 thumbprint
        ({"dpop_jkt": JKT[:-1]}, InvalidRequest, "malformed_dpop_jkt"),
        ({"dpop_jkt": JKT + "="}, InvalidRequest, "malformed_dpop_jkt"),
        ({"dpop_jkt": "x" * 86}, InvalidRequest, "malformed_dpop_jkt"),
        # OAuth 2.0 Multiple Response Type Encoding Practices §2.1
        ({"response_mode": "teleport"}, InvalidRequest, "unknown_response_mode"),
        ({"response_mode": "fragment"}, InvalidRequest, "response_mode"),
        ({"response_mode": "jwt"}, InvalidRequest, "response_mode"),
        ({"scope": "x" * 9000}, InvalidRequest, "too_long"),
        ({"nonce": "x" * 3000}, InvalidRequest, "too_long"),
    ],
)
def test_redirectable_errors_rfc6749_4_1_2_1(
    changes: dict[str, Any], cause: type[OAuthError], reason: str
) -> None:
    error = redirect_error(params(**changes))
    assert isinstance(error.cause, cause)
    assert error.error == cause.error
    assert error.reason == reason
    assert error.target.redirect_uri == "https://app.example/cb"
    assert error.target.client_id in ("web", "m2m")
    assert error.target.issuer == ISSUER


def test_claims_must_be_a_json_object_oidc_core_5_5() -> None:
    for value, reason in (
        ("not json", "claims_json"),
        ("[" * 3000 + "]" * 3000, "claims_json"),  # too deep to parse: an error, not a crash
        ("[]", "claims_shape"),
        ('{"userinfo": []}', "claims_shape"),
        ("{" + " " * 9000 + "}", "too_long"),
    ):
        assert redirect_error(params(claims=value), claims_parameter_supported=True).reason == (
            reason
        )


def test_the_error_response_carries_state_and_iss_rfc9207_2() -> None:
    error = redirect_error(params(scope="admin"))
    assert error.response_parameters() == {
        "error": "invalid_scope",
        "error_description": "the scope is unknown",
        "state": "af0ifjsldkj",
        "iss": ISSUER,
    }
    assert error.target.response_mode == "query"


def test_a_repeated_state_is_not_echoed_rfc6749_3_1() -> None:
    error = redirect_error(params(state=["a", "b"]))
    assert error.reason == "repeated_parameter"
    assert error.target.state is None
    assert "state" not in error.response_parameters()


def test_a_malformed_state_is_not_echoed_rfc6749_appendix_a_5() -> None:
    error = redirect_error(params(state="line\nbreak"))
    assert error.reason == "malformed_state"
    assert error.target.state is None


def test_errors_use_the_requested_response_mode_jarm_2_3() -> None:
    error = redirect_error(
        params(response_mode="form_post.jwt", scope="admin"),
        response_modes=frozenset({"query", "form_post.jwt"}),
    )
    assert error.target.response_mode == "form_post.jwt"


def test_a_bad_response_mode_falls_back_to_query_oauth_responses_2_1() -> None:
    error = redirect_error(params(response_mode="fragment"))
    assert error.target.response_mode == "query"
    assert error.target.state == "af0ifjsldkj"


def test_an_error_for_a_valid_request_is_redirected_rfc6749_4_1_2_1() -> None:
    request = validator().validate(params())
    error = request.redirect_error(AccessDenied("the user said no"), ISSUER)
    assert error.status == 403
    assert error.response_parameters() == {
        "error": "access_denied",
        "error_description": "the user said no",
        "state": "af0ifjsldkj",
        "iss": ISSUER,
    }


def test_scope_outside_the_registration_rfc7591_2() -> None:
    error = redirect_error(
        params(client_id="native", redirect_uri="http://127.0.0.1/cb", scope="write:reports")
    )
    assert error.reason == "scope_not_registered"


# -- PAR (RFC 9126) and the pending form (DESIGN.md D13) --------------------------------------


def test_pushed_request_round_trip_rfc9126_4() -> None:
    client = CLIENTS["par"]
    pushed = validator(claims_parameter_supported=True).validate(
        params(
            client_id=None,
            scope="openid profile",
            claims='{"userinfo": {"email": null}}',
            resource=RESOURCE,
        ),
        client=client,
        pushed=True,
    )
    stored = json.loads(json.dumps(pushed.to_pending()))
    request_uri = PAR_REQUEST_URI_PREFIX + "bwc4JK-ESC0w8acc191e-Y1LTC2"
    reference = parse_pushed_reference(
        {"client_id": ["par"], "request_uri": [request_uri], "scope": ["ignored"]}
    )
    assert reference == PushedReference("par", request_uri)
    request = resolve_pushed_request(reference, stored)
    assert request == replace(pushed, request_uri=request_uri)
    assert request.claims is not None
    assert dict(request.claims["userinfo"]) == {"email": None}


def test_par_client_id_must_be_the_authenticated_client_rfc9126_2_1() -> None:
    with pytest.raises(LocalAuthorizationError) as info:
        validator().validate(params(client_id="web"), client=CLIENTS["par"], pushed=True)
    assert info.value.reason == "client_id_mismatch"


def test_par_body_cannot_carry_request_uri_rfc9126_2_1() -> None:
    with pytest.raises(LocalAuthorizationError) as info:
        validator().validate(
            params(request_uri=PAR_REQUEST_URI_PREFIX + "a" * 32),
            client=CLIENTS["web"],
            pushed=True,
        )
    assert info.value.reason == "request_uri_here"


@pytest.mark.parametrize(
    ("values", "cause", "reason"),
    [
        # RFC 9101 §5.2 is not implemented: nothing is fetched
        ({"request_uri": ["https://client.example/ro.jwt"]}, RequestURINotSupported, None),
        ({"request_uri": ["urn:ietf:params:oauth:request_uri:"]}, InvalidRequestURI, None),
        ({"request_uri": ["urn:ietf:params:oauth:request_uri:a b"]}, InvalidRequestURI, None),
        ({"request_uri": ["urn:a", "urn:b"]}, InvalidRequest, "repeated_parameter"),
        # RFC 9101 §5: request and request_uri are exclusive
        (
            {"request_uri": [PAR_REQUEST_URI_PREFIX + "a" * 32], "request": ["x.y.z"]},
            InvalidRequest,
            "request_and_uri",
        ),
        ({"request_uri": [PAR_REQUEST_URI_PREFIX + "a" * 32]}, InvalidRequest, None),
    ],
)
def test_pushed_references_rfc9126_4(
    values: dict[str, list[str]], cause: type[OAuthError], reason: str | None
) -> None:
    p = {"client_id": ["web"], **values}
    if values == {"request_uri": [PAR_REQUEST_URI_PREFIX + "a" * 32]}:
        p = values  # no client_id
    with pytest.raises(LocalAuthorizationError) as info:
        parse_pushed_reference(p)
    assert isinstance(info.value.cause, cause)
    if reason is not None:
        assert info.value.reason == reason


def test_no_reference_without_request_uri_rfc9126_4() -> None:
    assert parse_pushed_reference(params()) is None


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (None, "unknown_request_uri"),
        ({"v": 1}, "corrupt_pending"),
        ({"v": 2}, "corrupt_pending"),
        ("nonsense", "corrupt_pending"),
    ],
)
def test_unknown_or_corrupt_pushed_requests_rfc9126_4(stored: Any, reason: str) -> None:
    reference = PushedReference("web", PAR_REQUEST_URI_PREFIX + "a" * 32)
    with pytest.raises(LocalAuthorizationError) as info:
        resolve_pushed_request(reference, stored)
    assert isinstance(info.value.cause, InvalidRequestURI)
    assert info.value.reason == reason


def test_a_pushed_request_is_bound_to_its_client_rfc9126_4() -> None:
    stored = validator().validate(params()).to_pending()
    reference = PushedReference("native", PAR_REQUEST_URI_PREFIX + "a" * 32)
    with pytest.raises(LocalAuthorizationError) as info:
        resolve_pushed_request(reference, stored)
    assert info.value.reason == "request_uri_client"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("response_mode", "jwt"),
        ("claims", []),
        ("max_age", True),
        ("scopes", "profile"),
        ("state", 1),
        ("request_object", "yes"),
    ],
)
def test_pending_form_is_read_strictly_design_d13(member: str, value: Any) -> None:
    data = validator().validate(params()).to_pending()
    data[member] = value
    with pytest.raises(ValueError, match="bad"):
        AuthorizationRequest.from_pending(data)


# -- request objects inside authorization requests (RFC 9101 §6.3, DESIGN.md D8) --------------


def _request_object(**claims: Any) -> str:
    body: dict[str, Any] = {
        "iss": "jar",
        "aud": ISSUER,
        "client_id": "jar",
        "response_type": "code",
        "redirect_uri": "https://jar.example/cb",
        "scope": "openid profile",
        "state": "signed-state",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "exp": NOW + 300,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return sign({"alg": "ES256", "kid": "k1", "typ": "oauth-authz-req+jwt"}, body, CLIENT_KEY)


def test_only_signed_parameters_are_used_rfc9101_6_3() -> None:
    outer = {
        "client_id": ["jar"],
        "request": [_request_object(max_age=60, resource=[RESOURCE])],
        "scope": ["write:reports"],
        "state": ["unsigned-state"],
        "redirect_uri": ["https://evil.example/cb"],
        "prompt": ["none"],
    }
    request = validator().validate(outer)
    assert request.request_object is True
    assert request.scopes == ("openid", "profile")
    assert request.state == "signed-state"
    assert request.redirect_uri == "https://jar.example/cb"
    assert request.prompt == frozenset()
    assert request.max_age == 60
    assert request.resources == (RESOURCE,)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"client_id": "web"}, "client_id_mismatch"),
        ({"client_id": None}, "client_id_mismatch"),
        ({"request_uri": PAR_REQUEST_URI_PREFIX + "a" * 32}, "nested_request"),
        ({"request": "a.b.c"}, "nested_request"),
        ({"scope": ["profile"]}, "member_type"),
        ({"max_age": "60"}, None),  # a string is still a parameter; validated later
    ],
)
def test_request_object_members_rfc9101_4(claims: dict[str, Any], reason: str | None) -> None:
    outer = {"client_id": ["jar"], "request": [_request_object(**claims)]}
    if reason is None:
        assert validator().validate(outer).max_age == 60
        return
    error = local_error(outer)
    assert isinstance(error.cause, InvalidRequestObject)
    assert error.reason == reason


def test_request_object_errors_are_local_rfc9101_6_2() -> None:
    bad = _request_object(aud="https://other.example")
    error = local_error({"client_id": ["jar"], "request": [bad]})
    assert error.reason == "wrong_aud"


def test_request_object_parameters_rfc9101_4() -> None:
    assert request_object_parameters(
        {"iss": "c", "aud": ISSUER, "exp": 1, "scope": "a", "max_age": 5, "claims": {"x": None}}
    ) == {"scope": ["a"], "max_age": ["5"], "claims": ['{"x":null}']}
    with pytest.raises(InvalidRequestObject):
        request_object_parameters({"max_age": 1.5})
    with pytest.raises(InvalidRequestObject, match="a request object member"):
        request_object_parameters({'x"y\\': 1})
    with pytest.raises(InvalidRequestObject, match="member nonce"):
        request_object_parameters({"nonce": 1})


def test_pushed_request_object_at_par_rfc9126_3() -> None:
    pushed = validator().validate(
        {"request": [_request_object()]}, client=CLIENTS["jar"], pushed=True
    )
    assert pushed.request_object
    assert pushed.state == "signed-state"


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_modes": frozenset({"query", "teleport"})},
        {"require_signed_request_object": True, "request_objects": None},
        {"default_scopes": ("admin",)},
    ],
)
def test_policy_configuration_errors(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        make_policy(**overrides)


def test_parameters_must_be_sequences_rfc6749_3_1() -> None:
    with pytest.raises(TypeError):
        validator().validate({"client_id": "web"})  # type: ignore[dict-item]
