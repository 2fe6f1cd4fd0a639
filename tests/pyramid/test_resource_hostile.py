"""Hostile input at the resource server: every refusal is an OAuth error in its own shape,
never a 500 (RFC 6750 §3.1, RFC 9449 §7.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from resource_support import URL_REPORTS, DPoPKey, Issuer, make_app
from webtest import TestApp


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> TestApp:
    return make_app(tmp_path_factory.mktemp("hostile"), issuer)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer \u00e9t\u00e9",
        "Bearer " + "a" * 100_000,
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer =",
        "Bearer eyJ.eyJ.",
        "DPoP \u00ff",
        "Bearer\tabc",
        "bearer",
        "\u00e9",
        "Bearer " + "eyJhbGciOiJub25lIn0" * 3,
    ],
)
def test_a_hostile_authorization_is_a_clean_oauth_error_rfc6750_3_1(
    app: TestApp, authorization: str
) -> None:
    response = app.get("/api/reports", headers={"Authorization": authorization}, expect_errors=True)
    assert response.status_int in (400, 401), response.body
    assert response.content_type == "application/json"
    assert "WWW-Authenticate" in response.headers
    assert response.json.get("error") in (None, "invalid_request", "invalid_token")


@pytest.mark.parametrize(
    "proof",
    ["\u00e9", "a" * 100_000, "a.b.c", "..", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.", " ", "x,y"],
)
def test_a_hostile_dpop_header_is_a_clean_oauth_error_rfc9449_7_1(
    app: TestApp, issuer: Issuer, proof: str
) -> None:
    client = DPoPKey()
    token = issuer.token(cnf={"jkt": client.jkt})
    response = app.get(
        "/api/reports",
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
        expect_errors=True,
    )
    assert response.status_int == 401, response.body
    assert response.json["error"] == "invalid_dpop_proof"
    assert response.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')


@pytest.mark.parametrize(
    "environ",
    [
        {"QUERY_STRING": "access_token=%ZZ&%%%"},
        {"QUERY_STRING": "a=%ff%fe"},
        {"SSL_CLIENT_CERT": "\u00e9"},
        {"HTTP_CLIENT_CERT": ":\u00e9:", "REMOTE_ADDR": "10.0.0.1"},
        {"HTTP_FORWARDED": 'proto="\\', "REMOTE_ADDR": "10.0.0.1"},
        {"REQUEST_URI": "\u00e9?x"},
    ],
)
def test_hostile_request_parts_never_give_a_500(
    app: TestApp, issuer: Issuer, environ: dict[str, str]
) -> None:
    response = app.get(
        "/api/reports",
        headers={"Authorization": f"Bearer {issuer.token()}"},
        extra_environ=environ,
        expect_errors=True,
    )
    assert response.status_int in (200, 400, 401), response.body


def test_a_dpop_request_with_a_hostile_url_never_gives_a_500(
    tmp_path: Path, issuer: Issuer
) -> None:
    app = make_app(tmp_path, issuer)
    client = DPoPKey()
    token = issuer.token(cnf={"jkt": client.jkt})
    proof = client.proof("GET", URL_REPORTS, token=token)
    response = app.get(
        "/api/reports",
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
        extra_environ={"SCRIPT_NAME": "/\u00e9 x", "REQUEST_URI": "//\u00ff"},
        expect_errors=True,
    )
    assert response.status_int in (200, 401)


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-protected-resource/%00",
        "/.well-known/oauth-protected-resource/..%2f",
        "/.well-known/oauth-protected-resource/" + "a" * 5000,
        "/.well-known/oauth-protected-resource//api",
    ],
)
def test_hostile_metadata_paths_are_404(app: TestApp, path: str) -> None:
    app.get(path, status=404)
