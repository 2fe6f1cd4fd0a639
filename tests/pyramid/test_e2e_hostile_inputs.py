"""Bad input on every client-facing endpoint, generated from fixed seeds: whatever arrives,
the answer is a protocol error or a page, never a server error (RFC 6749 §5.2 and §4.1.2.1;
the card's bar: no 500, no traceback). Unstructured junk, then JWT-shaped junk in every slot
that takes a JWT (client assertions, DPoP proofs, request objects, assertions, tokens)."""

from __future__ import annotations

import base64
import random
import string
from typing import Any
from urllib.parse import urlencode

import pytest
from asrv_support import CLIENTS, Claims, Consent, as_app, basic
from webtest import TestApp

PATHS = (
    "/oauth/token",
    "/oauth/par",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/authorize",
    "/oauth/userinfo",
    "/oauth/register",
)
PARAMS = (
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "refresh_token",
    "scope",
    "resource",
    "client_assertion",
    "client_assertion_type",
    "subject_token",
    "subject_token_type",
    "assertion",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "prompt",
    "max_age",
    "claims",
    "response_mode",
    "dpop_jkt",
    "acr_values",
    "audience",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
)
AUTHORIZE_PARAMS = (
    "scope",
    "state",
    "code_challenge",
    "resource",
    "prompt",
    "max_age",
    "claims",
    "response_mode",
    "dpop_jkt",
    "request",
    "request_uri",
)
GRANTS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "password",
    "",
)
ALPHABET = string.printable + "\x00\xff\u00e9\u202e%&=+;#?"
JSON_PARTS = (
    b"{}",
    b"[]",
    b"null",
    b'{"alg":"none"}',
    b'{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}',
    b'{"alg":"ES256","kid":1}',
    b'{"iss":[1],"aud":{"a":1},"exp":"x"}',
    b"\xff\xfe",
    b'{"a":' * 50 + b"1" + b"}" * 50,
    b"[" * 2000 + b"]" * 2000,
    b'{"exp":1e999}',
    b'{"alg":"RS256","typ":"JWT","x5u":"http://x"}',
)


@pytest.fixture(scope="module")
def app() -> TestApp:
    return as_app(
        {"attesto.request_object_policy": "generic"},
        set_attesto_consent_policy=Consent(),
        set_attesto_claims_provider=Claims(),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _junk(rnd: random.Random) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.choice((0, 1, 5, 40, 300))))


def _jwt(rnd: random.Random) -> str:
    signature = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((0, 64, 256))))
    return f"{_b64(rnd.choice(JSON_PARTS))}.{_b64(rnd.choice(JSON_PARTS))}.{_b64(signature)}"


def _assert_clean(res: Any) -> None:
    assert res.status_int < 500, (res.request.url, res.status, res.text[:300])
    assert "Traceback" not in res.text


def test_unstructured_junk_is_never_a_server_error_rfc6749_5_2(app: TestApp) -> None:
    rnd = random.Random(7)
    for _ in range(600):
        path = rnd.choice(PATHS)
        form = [
            (name, rnd.choice(GRANTS) if name == "grant_type" else _junk(rnd))
            for name in (rnd.choice(PARAMS) for _ in range(rnd.randint(0, 6)))
        ]
        headers: dict[str, str] = {}
        if rnd.random() < 0.3:
            headers.update(basic("svc"))
        elif rnd.random() < 0.2:
            headers["Authorization"] = rnd.choice(("Basic ", "Bearer ", "DPoP ")) + _junk(rnd)
        if rnd.random() < 0.2:
            headers["DPoP"] = _junk(rnd)
        if rnd.random() < 0.3:
            res = app.get(f"{path}?{urlencode(form)}", headers=headers, expect_errors=True)
        elif path == "/oauth/register" and rnd.random() < 0.5:
            body = _junk(rnd).encode("utf-8", "surrogatepass")
            headers["Content-Type"] = "application/json"
            res = app.post(path, params=body, headers=headers, expect_errors=True)
        else:
            res = app.post(path, form, headers=headers, expect_errors=True)
        _assert_clean(res)


def test_jwt_shaped_junk_is_never_a_server_error_rfc7519_7_2(app: TestApp) -> None:
    rnd = random.Random(11)
    with_redirects = [c for c in CLIENTS.values() if c.redirect_uris]
    values = ("S256", "none login", "-1", '{"userinfo":{}}', "jwt", "form_post.jwt", "x" * 3000)
    for _ in range(600):
        headers: dict[str, str] = {}
        if rnd.random() < 0.3:
            headers["DPoP"] = _jwt(rnd)
        kind = rnd.random()
        if kind < 0.4:
            form = {"grant_type": rnd.choice(GRANTS[:5])}
            if rnd.random() < 0.5:
                form["client_assertion_type"] = (
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                )
                form["client_assertion"] = _jwt(rnd)
                form["client_id"] = rnd.choice(list(CLIENTS))
            else:
                headers.update(basic(rnd.choice(("svc", "svc-post", "web", "rs"))))
            for name in ("code", "refresh_token", "assertion", "subject_token", "resource"):
                if rnd.random() < 0.3:
                    form[name] = rnd.choice((_jwt(rnd), "https://x/\x00", "a" * 5000, "", " "))
            if "subject_token" in form:
                form["subject_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
            res = app.post("/oauth/token", form, headers=headers, expect_errors=True)
        elif kind < 0.8:
            client = rnd.choice(with_redirects)
            query = {
                "client_id": client.client_id,
                "redirect_uri": rnd.choice(list(client.redirect_uris)),
                "response_type": rnd.choice(("code", "token", "")),
            }
            for name in AUTHORIZE_PARAMS:
                if rnd.random() < 0.35:
                    query[name] = rnd.choice((_jwt(rnd), *values))
            res = app.get("/oauth/authorize", query, headers=headers, expect_errors=True)
        else:
            headers["Authorization"] = rnd.choice(("Bearer ", "DPoP ")) + _jwt(rnd)
            res = app.get("/oauth/userinfo", headers=headers, expect_errors=True)
        _assert_clean(res)
