"""End to end: the deployment's response hooks (DESIGN.md D24) — ``attesto.send_error`` (a
custom error envelope on every attesto JSON error) and ``attesto.www_authenticate`` (extra
challenge parameters) — keep the status, ``Cache-Control: no-store``, ``x-tm: commit`` and the
headers the protocol requires (RFC 6749 §5.1/§5.2, RFC 6750 §3, RFC 9449 §8, RFC 9110 §15.5.6).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asrv_support import CLIENTS, ISSUER, Claims, Consent, DPoPKey, as_app, basic
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.challenges import Challenge
from pyramid_attesto.core.errors import OAuthError
from pyramid_attesto.responses import ErrorEnvelope

TOKEN = "/oauth/token"
REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
USERINFO = "/oauth/userinfo"
REGISTER = "/oauth/register"
CC = {"grant_type": "client_credentials"}


def envelope(request: Any, error: OAuthError, body: dict[str, Any]) -> object:
    """A host envelope: ``{"ok": false, "error": {...}}`` plus a request id."""
    return ErrorEnvelope(
        {"ok": False, "error": {"code": error.error, **body}},
        headers={
            "X-Request-Id": "r-1",
            # Protected: attesto keeps its own values of these.
            "Cache-Control": "public, max-age=60",
            "WWW-Authenticate": "Forged",
            "x-tm": "abort",
        },
        content_type="application/problem+json",
    )


def plain_envelope(request: Any, error: OAuthError, body: dict[str, Any]) -> object:
    return {"failure": error.error, "status": error.status}


def _app(settings: dict[str, Any] | None = None, **directives: Any) -> TestApp:
    return as_app(settings, set_attesto_send_error=envelope, **directives)


def _assert_envelope(res: Any, code: str, status: int) -> None:
    assert res.status_int == status
    assert res.headers["Content-Type"] == "application/problem+json"
    assert res.json["ok"] is False
    assert res.json["error"]["code"] == code
    assert res.json["error"]["error"] == code  # the standard body, wrapped
    assert res.headers["Cache-Control"] == "no-store"  # RFC 6749 §5.1
    assert res.headers["x-tm"] == "commit"  # DESIGN.md rule 3
    assert res.headers["X-Request-Id"] == "r-1"


def test_token_error_in_custom_envelope_keeps_status_and_no_store_rfc6749_5_2() -> None:
    res = _app().post(TOKEN, {"grant_type": "password"}, headers=basic("svc"), status=400)
    _assert_envelope(res, "unsupported_grant_type", 400)
    assert "WWW-Authenticate" not in res.headers


def test_invalid_client_envelope_keeps_the_basic_challenge_rfc6749_5_2() -> None:
    res = _app().post(TOKEN, CC, headers=basic("svc", "wrong-secret-0123456789"), status=401)
    _assert_envelope(res, "invalid_client", 401)
    assert res.headers["WWW-Authenticate"].startswith("Basic ")  # not the hook's "Forged"


def test_use_dpop_nonce_envelope_keeps_the_dpop_nonce_header_rfc9449_8() -> None:
    app = _app({"attesto.dpop.nonce": "hmac", "attesto.dpop.nonce_secret": "s" * 32})
    res = app.post(TOKEN, CC, headers={**basic("svc"), "DPoP": DPoPKey().proof()}, status=400)
    _assert_envelope(res, "use_dpop_nonce", 400)
    assert res.headers["DPoP-Nonce"]


def test_revocation_error_in_custom_envelope_rfc7009_2_2_1() -> None:
    res = _app().post(REVOKE, {"token": "x"}, headers=basic("svc", "nope-0123456789"), status=401)
    _assert_envelope(res, "invalid_client", 401)
    assert res.headers["Access-Control-Allow-Origin"] == "*"  # D17 kept
    res = _app().post(REVOKE, {}, headers=basic("svc"), status=400)
    _assert_envelope(res, "invalid_request", 400)


def test_introspection_error_in_custom_envelope_rfc7662_2_3() -> None:
    res = _app().post(INTROSPECT, {"token": "x"}, status=401)
    _assert_envelope(res, "invalid_client", 401)


def test_wrong_method_envelope_keeps_allow_rfc9110_15_5_6() -> None:
    res = _app().get(TOKEN, status=405)
    _assert_envelope(res, "invalid_request", 405)
    assert res.headers["Allow"] == "POST"


def test_bare_json_body_from_the_hook_is_sent_as_application_json() -> None:
    app = as_app({"attesto.send_error": "test_e2e_response_hooks:plain_envelope"})
    res = app.post(TOKEN, {"grant_type": "password"}, headers=basic("svc"), status=400)
    assert res.json == {"failure": "unsupported_grant_type", "status": 400}
    assert res.headers["Content-Type"] == "application/json"
    assert res.headers["Cache-Control"] == "no-store"


def test_directive_wins_over_the_setting() -> None:
    app = as_app(
        {"attesto.send_error": "test_e2e_response_hooks:plain_envelope"},
        set_attesto_send_error=envelope,
    )
    res = app.post(TOKEN, {"grant_type": "password"}, headers=basic("svc"), status=400)
    assert res.json["ok"] is False


def _raises(request: Any, error: OAuthError, body: dict[str, Any]) -> object:
    raise RuntimeError("host bug")


def _unsendable(request: Any, error: OAuthError, body: dict[str, Any]) -> object:
    return ErrorEnvelope(body={"when": object()})


@pytest.mark.parametrize("hook", [_raises, _unsendable])
def test_a_failing_envelope_sends_the_standard_body_never_a_500(
    hook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = as_app(set_attesto_send_error=hook)
    with caplog.at_level(logging.ERROR, logger="pyramid_attesto"):
        res = app.post(TOKEN, {"grant_type": "password"}, headers=basic("svc"), status=400)
    assert res.json == {
        "error": "unsupported_grant_type",
        "error_description": "the grant type is not supported",
    }
    assert res.headers["Cache-Control"] == "no-store"
    assert "attesto.send_error failed" in caplog.text


@pytest.mark.parametrize(
    "headers",
    [{"X-Bad": "line\r\nbreak"}, {"Bad Name": "x"}],
)
def test_an_unsendable_envelope_header_falls_back(headers: dict[str, str]) -> None:
    def hook(request: Any, error: OAuthError, body: dict[str, Any]) -> object:
        return ErrorEnvelope({"x": 1}, headers=headers)

    res = as_app(set_attesto_send_error=hook).get(TOKEN, status=405)
    assert res.json["error"] == "invalid_request"


def test_a_non_json_media_type_falls_back() -> None:
    def hook(request: Any, error: OAuthError, body: dict[str, Any]) -> object:
        return ErrorEnvelope({"x": 1}, content_type="text/html")

    res = as_app(set_attesto_send_error=hook).get(TOKEN, status=405)
    assert res.headers["Content-Type"] == "application/json"
    assert res.json["error"] == "invalid_request"


def test_unresolvable_hook_names_the_setting() -> None:
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.send_error"):
        as_app({"attesto.send_error": "no_such_module_here:fn"})
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.www_authenticate"):
        as_app({"attesto.www_authenticate": "test_e2e_response_hooks:TOKEN"})


def test_success_is_not_enveloped() -> None:
    res = _app().post(TOKEN, CC, headers=basic("svc"), status=200)
    assert "access_token" in res.json


# -- www_authenticate ---------------------------------------------------------------------


def with_realm(
    request: Any, challenges: tuple[Challenge, ...], error: OAuthError | None
) -> list[Challenge]:
    return [Challenge(c.scheme, (("realm", "api"), *c.params, ("v", "2"))) for c in challenges]


def _userinfo_app(**directives: Any) -> TestApp:
    return as_app(
        {"attesto.grant_types_supported": "authorization_code refresh_token client_credentials"},
        set_attesto_claims_provider=Claims(),
        **directives,
    )


def test_www_authenticate_hook_adds_a_realm_to_userinfo_challenges_rfc6750_3() -> None:
    app = _userinfo_app(set_attesto_www_authenticate=with_realm)
    res = app.get(USERINFO, status=401)
    challenge = res.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", v="2"')
    assert 'DPoP realm="api", algs=' in challenge  # RFC 9449 §7.2: both schemes offered


def test_userinfo_error_challenge_and_envelope_together_rfc6750_3_1() -> None:
    app = _userinfo_app(
        set_attesto_www_authenticate=with_realm, set_attesto_send_error=plain_envelope
    )
    res = app.get(USERINFO, headers={"Authorization": "Bearer abc.def.ghi"}, status=401)
    assert res.json == {"failure": "invalid_token", "status": 401}
    assert res.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    assert res.headers["Cache-Control"] == "no-store"


def test_registration_challenge_goes_through_the_hook_rfc7591_3() -> None:
    app = as_app(
        {
            "attesto.registration.enabled": "true",
            "attesto.registration_store": "memory",
            "attesto.registration.default_scope": "read",
        },
        set_attesto_consent_policy=Consent(),
        set_attesto_www_authenticate=with_realm,
        set_attesto_send_error=envelope,
    )
    res = app.delete(f"{REGISTER}/nobody", headers={"Authorization": "Bearer x"}, status=401)
    _assert_envelope(res, "invalid_token", 401)
    assert res.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def _broken(request: Any, challenges: Any, error: Any) -> list[Challenge]:
    return [Challenge("Bearer", (("realm", "bad\nvalue"),))]


def _empty(request: Any, challenges: Any, error: Any) -> list[Challenge]:
    return []


@pytest.mark.parametrize("hook", [_broken, _empty])
def test_a_failing_challenge_hook_sends_attestos_challenge_rfc6750_3(hook: Any) -> None:
    res = _userinfo_app(set_attesto_www_authenticate=hook).get(USERINFO, status=401)
    assert res.headers["WWW-Authenticate"].startswith("Bearer")
    assert "realm" not in res.headers["WWW-Authenticate"]


# -- the Basic challenge of client authentication (RFC 6749 §5.2) --------------------------

STANDARD_BASIC = 'Basic realm="oauth", charset="UTF-8"'
SEEN: list[tuple[str, str | None]] = []


def basic_realm(
    request: Any, challenges: tuple[Challenge, ...], error: OAuthError | None
) -> list[Challenge]:
    """A realm of the deployment's, replacing attesto's (the documented example)."""
    SEEN.append((challenges[0].scheme, error.error if error else None))
    return [
        Challenge(c.scheme, (("realm", "id.example"), *[p for p in c.params if p[0] != "realm"]))
        for c in challenges
    ]


def _basic_app(hook: Any = basic_realm, **settings: Any) -> TestApp:
    return as_app(
        {"attesto.introspection_clients": "rs", **settings},
        set_attesto_www_authenticate=hook,
        set_attesto_consent_policy=Consent(),
    )


BAD_SECRET = basic("svc", "wrong-secret-0123456789")
PAR_FORM = {"response_type": "code", "client_id": "svc", "redirect_uri": "https://app.example/cb"}


@pytest.mark.parametrize(
    ("path", "form"),
    [(TOKEN, CC), (INTROSPECT, {"token": "x"}), (REVOKE, {"token": "x"}), ("/oauth/par", PAR_FORM)],
)
def test_basic_challenge_goes_through_the_hook_rfc6749_5_2(path: str, form: Any) -> None:
    SEEN.clear()
    res = _basic_app().post(path, form, headers=BAD_SECRET, status=401)
    assert res.json["error"] == "invalid_client"
    assert res.headers["WWW-Authenticate"] == 'Basic realm="id.example", charset="UTF-8"'
    assert res.headers["Cache-Control"] == "no-store"
    assert SEEN == [("Basic", "invalid_client")]


def test_without_the_hook_the_basic_challenge_is_unchanged_rfc6749_5_2() -> None:
    res = as_app().post(TOKEN, CC, headers=BAD_SECRET, status=401)
    assert res.headers["WWW-Authenticate"] == STANDARD_BASIC


def _adds_a_parameter(request: Any, challenges: Any, error: Any) -> list[Challenge]:
    return [Challenge(c.scheme, (*c.params, ("error", error.error))) for c in challenges]


def test_basic_challenge_hook_may_add_a_parameter_on_token_and_introspection() -> None:
    app = _basic_app(_adds_a_parameter)
    for path, form in ((TOKEN, CC), (INTROSPECT, {"token": "x"})):
        res = app.post(path, form, headers=BAD_SECRET, status=401)
        assert res.headers["WWW-Authenticate"] == STANDARD_BASIC + ', error="invalid_client"'


def _drops_basic(request: Any, challenges: Any, error: Any) -> list[Challenge]:
    return [Challenge("Bearer", (("realm", "api"),))]


def _raises_challenge(request: Any, challenges: Any, error: Any) -> list[Challenge]:
    raise RuntimeError("host bug")


@pytest.mark.parametrize("hook", [_raises_challenge, _drops_basic, with_realm, _empty, _broken])
def test_a_failing_basic_challenge_hook_sends_the_standard_challenge_rfc6749_5_2(
    hook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 6749 §5.2: a 401 ``invalid_client`` after HTTP authentication carries a challenge
    in the scheme the client used. A hook that raises, drops ``Basic``, repeats ``realm``
    (``with_realm`` prepends one: RFC 9110 §11.2, a parameter once per challenge) or returns
    nothing sendable is logged and the standard ``Basic`` challenge is sent."""
    app = _basic_app(hook)
    with caplog.at_level(logging.ERROR, logger="pyramid_attesto"):
        for path, form in ((TOKEN, CC), (INTROSPECT, {"token": "x"})):
            res = app.post(path, form, headers=BAD_SECRET, status=401)
            assert res.json["error"] == "invalid_client"
            assert res.headers["WWW-Authenticate"] == STANDARD_BASIC
    assert "attesto.www_authenticate failed" in caplog.text
    assert "wrong-secret" not in caplog.text


def test_no_hooks_changes_nothing() -> None:
    res = as_app().get(TOKEN, status=405)
    assert res.json == {
        "error": "invalid_request",
        "error_description": "this endpoint accepts POST",
    }
    assert res.headers["x-tm"] == "commit"
    assert ISSUER  # the shared support module is the one configured
    assert "svc" in CLIENTS


# -- the resource server alone (pyramid_attesto.resource) -----------------------------------


def test_resource_server_challenge_and_envelope_rfc6750_3_1(tmp_path: Any) -> None:
    from resource_support import Issuer, make_app

    issuer = Issuer()

    def configure(config: Any) -> None:
        config.set_attesto_send_error(plain_envelope)
        config.set_attesto_www_authenticate(with_realm)

    app = make_app(tmp_path, issuer, configure=configure)
    token = issuer.token(scope="profile")
    res = app.get("/api/reports", headers={"Authorization": f"Bearer {token}"}, status=403)
    assert res.json == {"failure": "insufficient_scope", "status": 403}
    challenge = res.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="insufficient_scope"')
    assert 'scope="read:reports"' in challenge
    assert res.headers["Cache-Control"] == "no-store"
    # No credentials: the challenge goes through the hook, the body stays {} (RFC 6750 §3.1).
    res = app.get("/api/reports", status=401)
    assert res.json == {}
    assert res.headers["WWW-Authenticate"].startswith('Bearer realm="api"')


def test_resource_server_settings_name_the_hooks(tmp_path: Any) -> None:
    from resource_support import Issuer, make_app

    issuer = Issuer()
    app = make_app(
        tmp_path,
        issuer,
        {
            "attesto.send_error": "test_e2e_response_hooks:plain_envelope",
            "attesto.www_authenticate": "test_e2e_response_hooks:with_realm",
        },
    )
    res = app.get("/api/reports", headers={"Authorization": "Bearer a.b.c"}, status=401)
    assert res.json == {"failure": "invalid_token", "status": 401}
    assert res.headers["WWW-Authenticate"].startswith('Bearer realm="api"')


def test_par_error_in_custom_envelope_rfc9126_2_3() -> None:
    app = _app(set_attesto_consent_policy=Consent())
    form = {"response_type": "code", "client_id": "pub", "redirect_uri": "http://127.0.0.1/cb"}
    res = app.post("/oauth/par", {**form, "request_uri": "urn:x"}, status=400)
    _assert_envelope(res, "invalid_request", 400)
