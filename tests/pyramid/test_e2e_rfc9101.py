"""End to end: JWT-secured authorization requests (RFC 9101) at the PAR endpoint and the
authorization endpoint, under ``attesto.request_object_policy``. Request objects are signed
here with ``cryptography`` directly (``tests/core/authz_jose_helpers.py``), so nothing of our
JOSE code vouches for what it verifies."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asrv_support import CLIENTS, HASHES, ISSUER, SECRETS, Consent, as_app, basic
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import KeySet
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.request_objects import RequestObjectPolicy
from pyramid_attesto.core.secret import hash_secret

_spec = importlib.util.spec_from_file_location(
    "_e2e_authz_jose_helpers", Path(__file__).parents[1] / "core" / "authz_jose_helpers.py"
)
assert _spec is not None
assert _spec.loader is not None
jose = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jose)

AUTHORIZE = "/oauth/authorize"
PAR = "/oauth/par"
TOKEN = "/oauth/token"
VERIFIER = "r" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
USER = {"X-Test-User": "alice"}
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
JWKS = {"keys": [jose.public_jwk(EC_KEY, "ec1"), jose.public_jwk(RSA_KEY, "rsa1")]}
STRICT = RequestObjectPolicy.generic(require_explicit_typ=True)
"""A policy object named by its dotted name in a test below."""


def _native(client_id: str, **extra: Any) -> Client:
    return Client(
        client_id=client_id,
        token_endpoint_auth_method="none",
        application_type="native",
        redirect_uris=("http://127.0.0.1/cb",),
        grant_types=("authorization_code",),
        scope="read write",
        jwks=JWKS,
        **extra,
    )


CLIENTS["jar-pub"] = _native("jar-pub")
CLIENTS["jar-required"] = _native("jar-required", require_signed_request_object=True)
CLIENTS["jar-ps256"] = _native("jar-ps256", request_object_signing_alg="PS256")
CLIENTS["jar-conf"] = Client(
    client_id="jar-conf",
    redirect_uris=("https://app.example/cb",),
    grant_types=("authorization_code",),
    scope="read write",
    jwks=JWKS,
)
SECRETS["jar-conf"] = "jar-conf-secret-0123456789"
HASHES["jar-conf"] = hash_secret(SECRETS["jar-conf"])


def _app(**settings: str) -> TestApp:
    return as_app(
        {f"attesto.{k.replace('__', '.')}": v for k, v in settings.items()},
        set_attesto_consent_policy=Consent(),
    )


@pytest.fixture(scope="module")
def app() -> TestApp:
    return _app(request_object_policy="generic")


def _claims(client_id: str = "jar-pub", **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    redirect = "https://app.example/cb" if client_id == "jar-conf" else "http://127.0.0.1/cb"
    claims: dict[str, Any] = {
        "iss": client_id,
        "aud": ISSUER,
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect,
        "scope": "read",
        "state": "inner",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(12),
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


def _signed(
    claims: dict[str, Any],
    *,
    alg: str = "ES256",
    key: Any = None,
    kid: str | None = None,
    typ: str | None = "oauth-authz-req+jwt",
) -> str:
    header: dict[str, Any] = {"alg": alg, "kid": kid or ("ec1" if alg == "ES256" else "rsa1")}
    if typ is not None:
        header["typ"] = typ
    return jose.sign(header, claims, key or (EC_KEY if alg == "ES256" else RSA_KEY))


def _code(res: Any, state: str = "inner") -> str:
    assert res.status_int == 302
    params = parse_qs(urlsplit(res.headers["Location"]).query)
    assert params["state"] == [state]
    assert params["iss"] == [ISSUER]
    return params["code"][0]


def _redeem(app: TestApp, code: str, client_id: str = "jar-pub") -> Any:
    redirect = "https://app.example/cb" if client_id == "jar-conf" else "http://127.0.0.1/cb"
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "code_verifier": VERIFIER,
        "client_id": client_id,
    }
    if client_id == "jar-conf":
        return app.post(TOKEN, form, headers=basic("jar-conf"), status=200)
    return app.post(TOKEN, form, status=200)


def _local_error(res: Any, error: str, description: str) -> None:
    assert res.status_int == 400
    assert "Location" not in res.headers
    assert f"<code>{error}</code>: {description}" in res.text


# -- authorize with a request object ------------------------------------------------------


def test_request_object_at_authorize_rfc9101_5(app: TestApp) -> None:
    query = {"client_id": "jar-pub", "request": _signed(_claims())}
    code = _code(app.get(AUTHORIZE, query, headers=USER))
    assert _redeem(app, code).json["scope"] == "read"


def test_unsigned_parameters_beside_it_are_ignored_rfc9101_6_3_d8(app: TestApp) -> None:
    query = {
        "client_id": "jar-pub",
        "request": _signed(_claims()),
        "scope": "write",
        "state": "outer",
        "redirect_uri": "http://127.0.0.1:9/evil",
        "response_mode": "form_post",
    }
    code = _code(app.get(AUTHORIZE, query, headers=USER))
    assert _redeem(app, code).json["scope"] == "read"


def test_rsa_pss_request_object_rfc9101_4(app: TestApp) -> None:
    query = {"client_id": "jar-pub", "request": _signed(_claims(), alg="PS256")}
    assert _code(app.get(AUTHORIZE, query, headers=USER))


def test_error_after_verification_goes_to_the_signed_redirect_with_signed_state_rfc9101_6_3(
    app: TestApp,
) -> None:
    query = {"client_id": "jar-pub", "request": _signed(_claims(scope="nope")), "state": "x"}
    res = app.get(AUTHORIZE, query, status=302)
    assert parse_qs(urlsplit(res.headers["Location"]).query) == {
        "error": ["invalid_scope"],
        "error_description": ["the scope is unknown"],
        "state": ["inner"],
        "iss": [ISSUER],
    }


@pytest.mark.parametrize(
    ("request_object", "description"),
    [
        (_signed(_claims(), key=OTHER_KEY), "the request object signature is invalid"),
        (_signed(_claims(), alg="none"), "the request object algorithm is not allowed"),
        (
            jose.sign({"alg": "HS256", "kid": "ec1"}, _claims(), None) + "c2ln",
            "the request object algorithm is not allowed",
        ),
        (_signed(_claims(), typ="at+jwt"), "the request object has the wrong typ"),
        (
            _signed(_claims(aud="https://other.example")),
            "the request object aud is not this server",
        ),
        (_signed(_claims(iss="jar-conf")), "the request object iss is not the client"),
        (
            _signed(_claims(exp=int(time.time()) - 120)),
            "the request object has expired",
        ),
        (
            _signed(_claims(nbf=int(time.time()) + 600)),
            "the request object is not yet valid",
        ),
        (
            _signed({**_claims(), "client_id": "jar-conf"}),
            "the request object client_id does not match the client_id parameter",
        ),
        (
            _signed(_claims(request_uri="urn:x")),
            "a request object cannot contain request or request_uri",
        ),
        ("a.b", "the request object is not a compact JWS"),
        ("a.b.c.d.e", "encrypted request objects are not supported"),
    ],
    ids=[
        "bad_signature_rfc9101_6_2",
        "alg_none_rfc9101_6_2_rfc8725_3_1",
        "alg_hs256_rfc8725_3_1",
        "wrong_typ_rfc9101_10_8_rfc8725_3_11",
        "wrong_aud_rfc9101_4",
        "wrong_iss_rfc9101_4",
        "expired_rfc7519_4_1_4",
        "not_yet_valid_rfc7519_4_1_5",
        "client_id_mismatch_rfc9101_6_3",
        "nested_request_uri_rfc9101_4",
        "malformed_rfc9101_6_2",
        "encrypted_unsupported_rfc9101_6_1",
    ],
)
def test_bad_request_object_at_authorize_is_a_local_error(
    app: TestApp, request_object: str, description: str
) -> None:
    query = {"client_id": "jar-pub", "request": request_object, "state": "outer"}
    _local_error(app.get(AUTHORIZE, query, status=400), "invalid_request_object", description)


def test_client_registered_alg_is_the_only_one_oidc_registration_2(app: TestApp) -> None:
    bad = {"client_id": "jar-ps256", "request": _signed(_claims("jar-ps256"))}
    _local_error(
        app.get(AUTHORIZE, bad, status=400),
        "invalid_request_object",
        "the request object algorithm is not allowed",
    )
    good = {"client_id": "jar-ps256", "request": _signed(_claims("jar-ps256"), alg="PS256")}
    assert _code(app.get(AUTHORIZE, good, headers=USER))


def test_request_and_request_uri_together_are_refused_rfc9101_5(app: TestApp) -> None:
    query = {
        "client_id": "jar-pub",
        "request": _signed(_claims()),
        "request_uri": "urn:ietf:params:oauth:request_uri:" + "a" * 32,
    }
    _local_error(
        app.get(AUTHORIZE, query, status=400),
        "invalid_request",
        "request and request_uri cannot both be sent",
    )


# -- PAR with a request object ------------------------------------------------------------


def test_request_object_at_par_then_authorize_rfc9126_3(app: TestApp) -> None:
    form = {"request": _signed(_claims("jar-conf")), "scope": "write", "state": "outer"}
    pushed = app.post(PAR, form, headers=basic("jar-conf"), status=201).json
    query = {"client_id": "jar-conf", "request_uri": pushed["request_uri"]}
    code = _code(app.get(AUTHORIZE, query, headers=USER))
    assert _redeem(app, code, "jar-conf").json["scope"] == "read"


def test_bad_request_object_at_par_is_json_rfc9126_2_3(app: TestApp) -> None:
    form = {"request": _signed(_claims("jar-conf"), key=OTHER_KEY)}
    res = app.post(PAR, form, headers=basic("jar-conf"), status=400)
    assert res.headers["Cache-Control"] == "no-store"
    assert res.json == {
        "error": "invalid_request_object",
        "error_description": "the request object signature is invalid",
    }


def test_par_request_object_of_another_client_is_refused_rfc9101_4(app: TestApp) -> None:
    # Both clients registered the same keys: iss names the client that signed it.
    form = {"request": _signed(_claims("jar-pub"))}
    res = app.post(PAR, form, headers=basic("jar-conf"), status=400)
    assert res.json == {
        "error": "invalid_request_object",
        "error_description": "the request object iss is not the client",
    }
    inner = {**_claims("jar-conf"), "client_id": "jar-pub"}
    res = app.post(PAR, {"request": _signed(inner)}, headers=basic("jar-conf"), status=400)
    assert res.json == {
        "error": "invalid_request_object",
        "error_description": "the request object client_id does not match the client_id parameter",
    }


# -- requiring signed request objects -----------------------------------------------------


def test_client_that_requires_signed_requests_rfc9101_10_5(app: TestApp) -> None:
    unsigned = {
        "client_id": "jar-required",
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1/cb",
        "scope": "read",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
    }
    _local_error(
        app.get(AUTHORIZE, unsigned, status=400),
        "invalid_request",
        "this client must use a signed request object",
    )
    signed = {"client_id": "jar-required", "request": _signed(_claims("jar-required"))}
    assert _code(app.get(AUTHORIZE, signed, headers=USER))


def test_requirement_is_checked_again_when_the_pushed_request_is_used_rfc9101_10_5(
    app: TestApp,
) -> None:
    CLIENTS["jar-later"] = Client(
        client_id="jar-later",
        redirect_uris=("https://app.example/cb",),
        grant_types=("authorization_code",),
        scope="read",
        jwks=JWKS,
    )
    SECRETS["jar-later"] = SECRETS["jar-conf"]
    HASHES["jar-later"] = HASHES["jar-conf"]
    form = {
        "response_type": "code",
        "redirect_uri": "https://app.example/cb",
        "scope": "read",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
    }
    pushed = app.post(PAR, form, headers=basic("jar-later"), status=201).json
    CLIENTS["jar-later"] = Client(
        client_id="jar-later",
        redirect_uris=("https://app.example/cb",),
        grant_types=("authorization_code",),
        scope="read",
        jwks=JWKS,
        require_signed_request_object=True,
    )
    query = {"client_id": "jar-later", "request_uri": pushed["request_uri"]}
    _local_error(
        app.get(AUTHORIZE, query, headers=USER, status=400),
        "invalid_request",
        "this client must use a signed request object",
    )


def test_server_that_requires_signed_requests_rfc9101_10_5() -> None:
    app = _app(request_object_policy="generic", require_signed_request_object="true")
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["require_signed_request_object"] is True
    form = {
        "response_type": "code",
        "redirect_uri": "https://app.example/cb",
        "scope": "read",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
    }
    res = app.post(PAR, form, headers=basic("jar-conf"), status=400)
    assert res.json == {
        "error": "invalid_request",
        "error_description": "this client must use a signed request object",
    }
    signed = {"request": _signed(_claims("jar-conf"))}
    assert app.post(PAR, signed, headers=basic("jar-conf"), status=201)


# -- policies, metadata and configuration -------------------------------------------------


def test_metadata_advertises_the_policy_rfc9101_10_5(app: TestApp) -> None:
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["request_parameter_supported"] is True
    assert doc["request_object_signing_alg_values_supported"] == [
        "ES256",
        "EdDSA",
        "PS256",
        "RS256",
    ]
    assert doc["require_signed_request_object"] is False
    assert doc["request_uri_parameter_supported"] is False


def test_without_a_policy_request_is_not_supported_rfc9101_6_1() -> None:
    app = _app()
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["request_parameter_supported"] is False
    assert "request_object_signing_alg_values_supported" not in doc
    assert "require_signed_request_object" not in doc
    query = {"client_id": "jar-pub", "request": _signed(_claims())}
    _local_error(
        app.get(AUTHORIZE, query, status=400),
        "request_not_supported",
        "the request parameter is not supported",
    )


def test_fapi2_message_signing_policy_fapi2_ms_5_3_1() -> None:
    app = _app(request_object_policy="fapi2_message_signing")
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["request_object_signing_alg_values_supported"] == ["ES256", "EdDSA", "PS256"]
    for claims, alg, description in (
        (_claims(nbf=None), "ES256", "the request object needs nbf"),
        (_claims(), "RS256", "the request object algorithm is not allowed"),
        (
            _claims(exp=int(time.time()) + 7200),
            "ES256",
            "the request object lifetime is too long",
        ),
    ):
        query = {"client_id": "jar-pub", "request": _signed(claims, alg=alg)}
        _local_error(app.get(AUTHORIZE, query, status=400), "invalid_request_object", description)
    query = {"client_id": "jar-pub", "request": _signed(_claims())}
    assert _code(app.get(AUTHORIZE, query, headers=USER))


def test_dotted_policy_object() -> None:
    app = _app(request_object_policy="test_e2e_rfc9101.STRICT")
    query = {"client_id": "jar-pub", "request": _signed(_claims(), typ=None)}
    _local_error(
        app.get(AUTHORIZE, query, status=400),
        "invalid_request_object",
        "the request object has the wrong typ",
    )
    factory = "pyramid_attesto.core.request_objects.RequestObjectPolicy.fapi2_message_signing"
    doc = _app(request_object_policy=factory).get("/.well-known/oauth-authorization-server").json
    assert doc["request_object_signing_alg_values_supported"] == ["ES256", "EdDSA", "PS256"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"request_object_policy": "os.sep"}, r"attesto\.request_object_policy: generic, fapi2"),
        ({"request_object_policy": "no.such.module"}, r"attesto\.request_object_policy: 'no"),
        (
            {"require_signed_request_object": "true"},
            r"attesto\.require_signed_request_object needs attesto\.request_object_policy",
        ),
    ],
)
def test_bad_policy_settings_are_refused_at_startup(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationExecutionError, match=message):
        _app(**settings)


# -- registration (RFC 9101 §10.5, OIDC Registration §2) ----------------------------------

REGISTRATION = {
    "redirect_uris": ["http://127.0.0.1/cb"],
    "token_endpoint_auth_method": "none",
    "application_type": "native",
    "scope": "read",
    "jwks": {"keys": [jose.public_jwk(EC_KEY, "ec1")]},
}


def test_registered_client_may_require_signed_requests_rfc9101_10_5() -> None:
    app = _app(
        request_object_policy="generic", registration__enabled="true", registration_store="memory"
    )
    body = {
        **REGISTRATION,
        "require_signed_request_object": True,
        "request_object_signing_alg": "ES256",
    }
    registered = app.post_json("/oauth/register", body, status=201).json
    assert registered["require_signed_request_object"] is True
    assert registered["request_object_signing_alg"] == "ES256"
    client_id = registered["client_id"]
    unsigned = {
        "client_id": client_id,
        "response_type": "code",
        "scope": "read",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
    }
    _local_error(
        app.get(AUTHORIZE, unsigned, status=400),
        "invalid_request",
        "this client must use a signed request object",
    )
    query = {"client_id": client_id, "request": _signed(_claims(client_id))}
    # A registered client is not pre-trusted (D16): the login page comes first.
    assert app.get(AUTHORIZE, query, status=200).text == "login page"
    assert _code(app.get(AUTHORIZE, query, headers=USER))


@pytest.mark.parametrize(
    ("settings", "member", "description"),
    [
        (
            {"request_object_policy": "fapi2_message_signing"},
            {"request_object_signing_alg": "RS256"},
            "request_object_signing_alg is not supported",
        ),
        (
            {},
            {"require_signed_request_object": True},
            "request objects are not supported here",
        ),
        (
            {"request_object_policy": "generic"},
            {"require_signed_request_object": "yes"},
            "require_signed_request_object must be a boolean",
        ),
    ],
)
def test_registration_refuses_what_is_not_enforced_rfc7591_3_2_2(
    settings: dict[str, str], member: dict[str, Any], description: str
) -> None:
    app = _app(registration__enabled="true", registration_store="memory", **settings)
    res = app.post_json("/oauth/register", {**REGISTRATION, **member}, status=400)
    assert res.json == {"error": "invalid_client_metadata", "error_description": description}


def test_signed_response_mode_is_used_for_success_and_errors_rfc9101_6_3_jarm_2_3(
    app: TestApp,
) -> None:
    keys = KeySet.import_key_set(app.get("/.well-known/jwks.json").json)

    def response(res: Any) -> dict[str, Any]:
        params = parse_qs(urlsplit(res.headers["Location"]).query)
        assert list(params) == ["response"]
        claims = dict(jwt.decode(params["response"][0], keys, algorithms=["ES256"]).claims)
        assert (claims.pop("iss"), claims.pop("aud")) == (ISSUER, "jar-pub")
        claims.pop("exp")
        return claims

    signed = _signed(_claims(response_mode="jwt"))
    ok = app.get(AUTHORIZE, {"client_id": "jar-pub", "request": signed}, headers=USER, status=302)
    assert set(response(ok)) == {"code", "state"}
    # The outer response_mode is not the signed one (D8): the error is still a JARM response.
    bad = _signed(_claims(response_mode="jwt", scope="nope"))
    query = {"client_id": "jar-pub", "request": bad, "response_mode": "query"}
    assert response(app.get(AUTHORIZE, query, status=302)) == {
        "error": "invalid_scope",
        "error_description": "the scope is unknown",
        "state": "inner",
    }
