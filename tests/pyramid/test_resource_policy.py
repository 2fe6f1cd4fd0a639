"""The security policy and the include: D1 composition with a host policy, events, identity,
step-up (RFC 9470), protected-resource metadata (RFC 9728) and configuration errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationExecutionError
from pyramid.httpexceptions import HTTPFound
from pyramid.security import forget, remember
from resource_support import (
    ISSUER,
    METADATA_URL,
    NOW,
    RESOURCE,
    DPoPKey,
    Issuer,
    assert_refused,
    challenge_params,
    make_app,
    write_jwks,
)
from webtest import TestApp

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.policy import (
    AttestoSecurityPolicy,
    AuthDenied,
    AuthSucceeded,
    CookieTokenExtractor,
)


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- a host with cookie login and an API (D1) -------------------------------------------------


class CookiePolicy:
    """A host's own policy: a (toy, unsigned) login cookie and an ACL."""

    def __init__(self) -> None:
        self.acl = ACLHelper()

    def identity(self, request: Any) -> str | None:
        return request.cookies.get("user")

    def authenticated_userid(self, request: Any) -> str | None:
        return self.identity(request)

    def permits(self, request: Any, context: Any, permission: str) -> Any:
        userid = self.identity(request)
        principals = [Everyone] + ([Authenticated, f"user:{userid}"] if userid else [])
        return self.acl.permits(context, principals, permission)

    def remember(self, request: Any, userid: str, **kw: Any) -> list[tuple[str, str]]:
        return [("Set-Cookie", f"user={userid}; Path=/")]

    def forget(self, request: Any, **kw: Any) -> list[tuple[str, str]]:
        return [("Set-Cookie", "user=; Max-Age=0; Path=/")]


class Root:
    __acl__: ClassVar = [
        (Allow, Authenticated, "view"),
        (Allow, "user:alice", "edit"),
        (Allow, "user:alice", "read:reports"),
    ]

    def __init__(self, request: Any) -> None:
        pass


def _who(request: Any) -> dict[str, Any]:
    identity = request.identity
    return {
        "userid": request.authenticated_userid,
        "oauth": not isinstance(identity, str) and identity is not None,
    }


def host_app(tmp_path: Path, issuer: Issuer, **settings: str) -> TestApp:
    base = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.keystore": str(write_jwks(tmp_path / "keys.jwks", issuer)),
        "attesto.scopes_supported": "read:reports write:reports",
        **settings,
    }
    with Configurator(settings=base, root_factory=Root) as config:
        from pyramid_attesto.core.clock import FrozenClock

        config.set_security_policy(CookiePolicy())
        config.include("pyramid_attesto.resource")
        config.set_attesto_clock(FrozenClock(NOW))

        def login_redirect(request: Any) -> HTTPFound:
            return HTTPFound("/login")

        config.add_forbidden_view(login_redirect)
        config.add_route("page", "/page")
        config.add_view(_who, route_name="page", renderer="json", permission="view")
        config.add_route("edit", "/edit")
        config.add_view(_who, route_name="edit", renderer="json", permission="edit")
        config.add_route("api", "/api/reports")
        config.add_view(_who, route_name="api", renderer="json", permission="read:reports")

        def login(request: Any) -> Any:
            response = request.response
            response.headerlist.extend(remember(request, "alice"))
            return {}

        def logout(request: Any) -> Any:
            response = request.response
            response.headerlist.extend(forget(request))
            return {}

        config.add_route("login", "/login")
        config.add_view(login, route_name="login", renderer="json")
        config.add_route("logout", "/logout")
        config.add_view(logout, route_name="logout", renderer="json")
        app = config.make_wsgi_app()
    return TestApp(app, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "api.example"})


def test_a_cookie_page_still_redirects_to_the_host_login_d1(tmp_path: Path, issuer: Issuer) -> None:
    app = host_app(tmp_path, issuer)
    response = app.get("/page", status=302)
    assert response.location.endswith("/login")
    assert "WWW-Authenticate" not in response.headers


def test_an_api_route_challenges_a_request_without_token_d1_rfc6750_3_1(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = host_app(tmp_path, issuer)
    response = app.get("/api/reports", status=401)
    assert_refused(response, 401, None, scope="read:reports")


def test_the_host_login_and_acl_keep_working_d1(tmp_path: Path, issuer: Issuer) -> None:
    app = host_app(tmp_path, issuer)
    login = app.get("/login")
    assert "user=alice" in login.headers["Set-Cookie"]  # remember() went to the host policy
    assert app.get("/page").json == {"userid": "alice", "oauth": False}
    assert app.get("/edit").json == {"userid": "alice", "oauth": False}
    # The host's ACL grants alice the API permission too: the fallback decides for cookies.
    assert app.get("/api/reports").json == {"userid": "alice", "oauth": False}
    logout = app.get("/logout")
    assert "Max-Age=0" in logout.headers["Set-Cookie"]


def test_an_oauth_request_is_decided_by_its_token_d1(tmp_path: Path, issuer: Issuer) -> None:
    app = host_app(tmp_path, issuer)
    assert app.get("/api/reports", headers=bearer(issuer.token())).json == {
        "userid": "user-1",
        "oauth": True,
    }
    # A host permission on an OAuth request is a scope: the token lacks "edit".
    response = app.get("/edit", headers=bearer(issuer.token()), status=403)
    assert_refused(response, 403, "insufficient_scope", scope="edit")
    app.get("/edit", headers=bearer(issuer.token(scope="edit")), status=200)
    # A token refused by the resource server is not replaced by the cookie.
    app.set_cookie("user", "alice")
    response = app.get("/api/reports", headers=bearer(issuer.token(aud="x")), status=401)
    assert_refused(response, 401, "invalid_token")


def test_the_include_leaves_a_composed_policy_alone(tmp_path: Path, issuer: Issuer) -> None:
    policy = AttestoSecurityPolicy(fallback=CookiePolicy())

    def configure(config: Configurator) -> None:
        config.set_security_policy(policy)

    app = make_app(tmp_path, issuer, configure=configure)
    from pyramid.interfaces import ISecurityPolicy

    assert app.app.registry.queryUtility(ISecurityPolicy) is policy


def test_install_policy_false_leaves_the_security_policy_to_the_host(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.install_policy": "false"})
    from pyramid.interfaces import ISecurityPolicy

    assert app.app.registry.queryUtility(ISecurityPolicy) is None


def test_a_policy_cannot_fall_back_to_another_attesto_policy() -> None:
    with pytest.raises(ValueError, match="cannot fall back"):
        AttestoSecurityPolicy(fallback=AttestoSecurityPolicy())


def test_remember_and_forget_without_fallback_are_empty() -> None:
    policy = AttestoSecurityPolicy()
    assert policy.remember(object(), "x") == []
    assert policy.forget(object()) == []


# -- identity, events, principal ------------------------------------------------------------

LOADED: list[str] = []


def load_principal(identity: Any) -> dict[str, str]:
    LOADED.append(identity.subject)
    return {"name": identity.subject.upper()}


def extract_cookie(request: Any) -> tuple[str, str] | None:
    token = request.cookies.get("at")
    return ("Bearer", token) if token else None


cookie_extractor = CookieTokenExtractor("at", ["https://app.example"])


def test_the_token_is_verified_once_per_request_and_events_carry_no_token(
    tmp_path: Path, issuer: Issuer
) -> None:
    events: list[Any] = []

    def view(request: Any) -> dict[str, Any]:
        assert request.identity is request.identity
        return {"sub": request.authenticated_userid}

    def configure(config: Configurator) -> None:
        config.add_subscriber(events.append, AuthSucceeded)
        config.add_subscriber(events.append, AuthDenied)
        config.add_route("twice", "/api/twice")
        config.add_view(view, route_name="twice", renderer="json", permission="read:reports")

    app = make_app(tmp_path, issuer, configure=configure)
    token = issuer.token()
    app.get("/api/twice", headers=bearer(token))
    assert [type(e) for e in events] == [AuthSucceeded]
    assert (events[0].subject, events[0].client_id, events[0].scheme) == (
        "user-1",
        "client-1",
        "Bearer",
    )
    events.clear()
    app.get("/api/twice", headers=bearer(issuer.token(exp=NOW - 600)), status=401)
    app.get("/api/twice", headers=bearer(issuer.token(scope="profile")), status=403)
    app.get("/api/twice", status=401)
    summary = [(type(e), getattr(e, "reason", None), getattr(e, "error", None)) for e in events]
    assert summary == [
        (AuthDenied, "expired", "invalid_token"),
        (AuthSucceeded, None, None),
        (AuthDenied, "insufficient_scope", "insufficient_scope"),
        (AuthDenied, "no_credentials", None),
    ]
    assert events[2].subject == "user-1"
    events.clear()
    app.get(f"/api/twice?access_token={token}", status=400)
    assert [(e.reason, e.error) for e in events] == [("query_token", "invalid_request")]
    for event in events:
        assert token not in repr(event)


def test_the_host_principal_is_loaded_lazily_d10(tmp_path: Path, issuer: Issuer) -> None:
    LOADED.clear()

    def view(request: Any) -> dict[str, Any]:
        return {"principal": request.identity.principal}

    def configure(config: Configurator) -> None:
        config.add_route("me", "/api/me")
        config.add_view(view, route_name="me", renderer="json", permission="read:reports")

    app = make_app(
        tmp_path,
        issuer,
        {"attesto.principal_loader": f"{__name__}:load_principal"},
        configure=configure,
    )
    app.get("/api/reports", headers=bearer(issuer.token()))
    assert LOADED == []  # a route that needs only scopes costs no principal lookup
    assert app.get("/api/me", headers=bearer(issuer.token())).json == {
        "principal": {"name": "USER-1"}
    }
    assert LOADED == ["user-1"]


def test_the_principal_kind_comes_from_the_token_d10(tmp_path: Path, issuer: Issuer) -> None:
    app = make_app(tmp_path, issuer)
    token = issuer.token(sub="client-1", principal_kind="client")
    assert app.get("/api/reports", headers=bearer(token)).json["kind"] == "client"
    assert (
        app.get("/api/reports", headers=bearer(issuer.token(drop=("principal_kind",)))).json["kind"]
        is None
    )


def test_a_host_extractor_finds_a_token_elsewhere(tmp_path: Path, issuer: Issuer) -> None:
    app = make_app(tmp_path, issuer, {"attesto.token_extractor": f"{__name__}:extract_cookie"})
    app.set_cookie("at", issuer.token())
    app.get("/api/reports", status=200)
    app.set_cookie("at", issuer.token(aud="x"))
    assert_refused(app.get("/api/reports", status=401), 401, "invalid_token")
    # The Authorization header wins over the extractor.
    app.get("/api/reports", headers=bearer(issuer.token()), status=200)


def test_a_cookie_token_on_an_unsafe_method_needs_an_allowed_origin_d17(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer, {"attesto.token_extractor": f"{__name__}:cookie_extractor"})
    app.set_cookie("at", issuer.token())
    app.get("/api/reports", status=200)
    app.post("/api/reports", headers={"Origin": "https://app.example"}, status=200)
    # A cross-site POST carries the cookie too: it is not a credential then.
    response = app.post("/api/reports", headers={"Origin": "https://evil.example"}, status=401)
    assert_refused(response, 401, None)
    assert_refused(app.post("/api/reports", status=401), 401, None)


def test_a_malformed_dpop_authorization_is_answered_in_the_dpop_scheme_rfc9449_7_1(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer)
    response = app.get("/api/reports", headers={"Authorization": "DPoP a b"}, status=400)
    assert_refused(response, 400, "invalid_request", scheme="DPoP")


# -- RFC 9470 step-up ---------------------------------------------------------------------


def test_a_missing_acr_asks_for_step_up_rfc9470_3(tmp_path: Path, issuer: Issuer) -> None:
    app = make_app(tmp_path, issuer)
    response = app.get("/api/stepup", headers=bearer(issuer.token(auth_time=NOW)), status=401)
    found = assert_refused(response, 401, "insufficient_user_authentication", scope="read:reports")
    assert (found["acr_values"], found["max_age"]) == ("urn:mfa", "300")


def test_an_old_authentication_asks_for_step_up_rfc9470_3(tmp_path: Path, issuer: Issuer) -> None:
    app = make_app(tmp_path, issuer)
    token = issuer.token(acr="urn:mfa", auth_time=NOW - 301)
    response = app.get("/api/stepup", headers=bearer(token), status=401)
    found = assert_refused(response, 401, "insufficient_user_authentication")
    assert found["max_age"] == "300"


def test_a_strong_recent_authentication_passes_rfc9470_3(tmp_path: Path, issuer: Issuer) -> None:
    app = make_app(tmp_path, issuer)
    app.get("/api/stepup", headers=bearer(issuer.token(acr="urn:mfa", auth_time=NOW - 10)))


def test_step_up_after_a_scope_check_still_names_the_scope_rfc6750_3_1(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer)
    token = issuer.token(scope="profile", acr="urn:mfa", auth_time=NOW)
    assert_refused(
        app.get("/api/stepup", headers=bearer(token), status=403),
        403,
        "insufficient_scope",
        scope="read:reports",
    )


# -- protected-resource metadata (RFC 9728) -------------------------------------------------


def test_protected_resource_metadata_rfc9728_2(tmp_path: Path, issuer: Issuer) -> None:
    app = make_app(
        tmp_path,
        issuer,
        {
            "attesto.resource_name": "Reports API",
            "attesto.resource_documentation": "https://docs.example/api",
            "attesto.scopes_supported": "read:reports offline_access",
        },
    )
    response = app.get("/.well-known/oauth-protected-resource/api")
    assert response.json == {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["read:reports"],  # MCP SEP-2207: no offline_access
        "bearer_methods_supported": ["header"],
        "resource_name": "Reports API",
        "resource_documentation": "https://docs.example/api",
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"],
        "dpop_bound_access_tokens_required": False,
    }
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # D17
    assert "Set-Cookie" not in response.headers
    preflight = app.options("/.well-known/oauth-protected-resource/api", status=204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    app.post("/.well-known/oauth-protected-resource/api", status=404)


def test_the_metadata_url_is_the_one_the_challenge_names_rfc9728_5_1(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer)
    response = app.get("/api/reports", status=401)
    for _, params in challenge_params(response.headers["WWW-Authenticate"]):
        assert params["resource_metadata"] == METADATA_URL
    path = METADATA_URL.removeprefix("https://api.example")
    assert app.get(path).json["resource"] == RESOURCE


def test_metadata_stays_at_the_root_under_a_route_prefix_d3(tmp_path: Path, issuer: Issuer) -> None:
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.keystore": str(write_jwks(tmp_path / "k.jwks", issuer)),
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto.resource", route_prefix="/v1")
        app = TestApp(config.make_wsgi_app())
    assert app.get("/.well-known/oauth-protected-resource/api").json["resource"] == RESOURCE


def test_a_default_permission_does_not_lock_out_the_metadata_d3(
    tmp_path: Path, issuer: Issuer
) -> None:
    def configure(config: Configurator) -> None:
        config.set_default_permission("read:reports")

    app = make_app(tmp_path, issuer, configure=configure)
    app.get("/.well-known/oauth-protected-resource", status=200)


# -- configuration errors -----------------------------------------------------------------


def _configure(settings: dict[str, Any], view_options: dict[str, Any] | None = None) -> None:
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto.resource")
        if view_options is not None:
            config.add_route("x", "/x")
            config.add_view(lambda r: {}, route_name="x", renderer="json", **view_options)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"attesto.resource": RESOURCE, "attesto.jwks_uri": "https://as.example/jwks"}, "issuer"),
        ({"attesto.issuer": ISSUER, "attesto.jwks_uri": "https://as.example/j"}, "resource"),
        ({"attesto.issuer": ISSUER, "attesto.resource": RESOURCE}, "jwks_uri"),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": RESOURCE,
                "attesto.jwks_uri": "https://as.example/j",
                "attesto.keystore": "k.jwks",
            },
            "set one",
        ),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": "https://API.example/api",
                "attesto.jwks_uri": "https://as.example/j",
            },
            "canonically",
        ),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": "http://api.example/api",
                "attesto.jwks_uri": "https://as.example/j",
            },
            "https",
        ),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": RESOURCE,
                "attesto.jwks_uri": "http://as.example/j",
            },
            "attesto.jwks_uri",
        ),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": RESOURCE,
                "attesto.jwks_uri": "https://as.example/j",
                "attesto.bearer_methods": "query",
            },
            "attesto.bearer_methods",
        ),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": RESOURCE,
                "attesto.jwks_uri": "https://as.example/j",
                "attesto.resorce": "typo",
            },
            "attesto.resorce",
        ),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": RESOURCE,
                "attesto.keystore": "generate",
            },
            "generate",
        ),
        (
            {
                "attesto.issuer": ISSUER,
                "attesto.resource": RESOURCE,
                "attesto.jwks_uri": "https://as.example/j",
                "attesto.revocation_check": "true",
            },
            "revocation_check",
        ),
    ],
)
def test_a_bad_setting_is_named_at_startup(settings: dict[str, Any], message: str) -> None:
    with pytest.raises((ConfigurationError, ConfigurationExecutionError), match=message):
        _configure(settings)


@pytest.mark.parametrize(
    "options",
    [
        {"attesto_scopes": []},
        {"attesto_scopes": ["two words"]},
        {"attesto_acr_values": []},
        {"attesto_max_age": -1},
        {"attesto_max_age": "5"},
    ],
)
def test_a_bad_view_option_is_refused_at_startup(options: dict[str, Any]) -> None:
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.resource": RESOURCE,
        "attesto.jwks_uri": "https://as.example/jwks",
    }
    with pytest.raises((ConfigurationError, ConfigurationExecutionError)):
        _configure(settings, options)


def test_a_dpop_client_without_proof_on_a_cookie_page_is_not_hijacked(
    tmp_path: Path, issuer: Issuer
) -> None:
    # A DPoP header alone is not a credential: the host decides.
    app = host_app(tmp_path, issuer)
    response = app.get("/page", headers={"DPoP": DPoPKey().proof("GET", "x")}, status=302)
    assert response.location.endswith("/login")


def test_with_the_authorization_server_include_the_keystore_and_clock_are_shared_d4() -> None:
    """Both includes in one app: the resource server verifies with the AS's own keystore
    (even a generated development key) and clock."""
    from pyramid_attesto.core.clock import FrozenClock
    from pyramid_attesto.core.keys import generate_development_keystore
    from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter

    keystore = generate_development_keystore(("ES256",))
    clock = FrozenClock(NOW)
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.keystore": "generate",
        "attesto.resource": RESOURCE,
        "attesto.scopes_supported": "read:reports",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto")  # includes pyramid_attesto.resource: resource is set
        config.include("pyramid_attesto.resource")  # harmless when said again
        config.set_attesto_keystore(keystore)
        config.set_attesto_clock(clock)
        config.add_route("api", "/api/reports")
        config.add_view(_who, route_name="api", renderer="json", permission="read:reports")
        app = TestApp(config.make_wsgi_app())
    minter = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock)
    token = minter.mint(
        AccessTokenClaims(
            subject="user-9", client_id="c", audience=RESOURCE, scopes=("read:reports",)
        )
    ).token
    assert app.get("/api/reports", headers=bearer(token)).json == {
        "userid": "user-9",
        "oauth": True,
    }
    clock.advance(3600)
    app.get("/api/reports", headers=bearer(token), status=401)


def test_a_permission_no_token_can_hold_is_never_offered_as_a_scope_rfc6750_3(
    tmp_path: Path, issuer: Issuer
) -> None:
    def configure(config: Configurator) -> None:
        config.add_route("odd", "/api/odd")
        config.add_view(_who, route_name="odd", renderer="json", permission='two "words"')

    app = make_app(tmp_path, issuer, configure=configure)
    found = assert_refused(app.get("/api/odd", status=401), 401, None)
    assert "scope" not in found
    response = app.get("/api/odd", headers=bearer(issuer.token()), status=403)
    found = assert_refused(response, 403, "insufficient_scope")
    assert "scope" not in found


def test_the_authorization_server_settings_accept_the_resource_keys() -> None:
    from pyramid_attesto.settings import parse_settings

    parsed = parse_settings(
        {
            "attesto.issuer": ISSUER,
            "attesto.keystore": "keys.jwks",
            "attesto.resource": RESOURCE,
            "attesto.dpop.required": "true",
            "attesto.dpop.max_age": "30",
            "attesto.access_token_leeway": "0",
        }
    )
    assert (parsed.resource, parsed.dpop_required, parsed.dpop_max_age) == ((RESOURCE,), True, 30)
    assert parsed.access_token_leeway == 0
    with pytest.raises(ConfigurationError, match=r"attesto\.access_token_leeway"):
        parse_settings(
            {"attesto.issuer": ISSUER, "attesto.keystore": "k", "attesto.access_token_leeway": "-1"}
        )
