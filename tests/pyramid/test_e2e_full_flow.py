"""The whole flow through a real waitress server on loopback, driven by ``requests`` with DPoP
proofs made by ``cryptography``: PAR with DPoP and a nonce -> authorize -> code -> token ->
refresh -> revoke, and client_credentials with private_key_jwt. Then the same flow split over
two application instances sharing one database (SQLite file, PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import waitress
from asrv_support import (
    KEYSTORE,
    Consent,
    DPoPKey,
    HostClients,
    HostPrincipals,
    client_assertion,
)
from pyramid.config import Configurator
from webtest import TestApp

from pyramid_attesto.server import get_server
from pyramid_attesto.storage import metadata

VERIFIER = "z" * 60
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
NONCE_SECRET = "shared-nonce-secret-" + "x" * 20


def _settings(issuer: str, url: str | None = None) -> dict[str, str]:
    settings = {
        "attesto.issuer": issuer,
        "attesto.keystore": "(directive)",
        "attesto.require_https": "false",
        "attesto.scopes_supported": "openid read write",
        "attesto.dpop.nonce": "hmac",
        "attesto.dpop.nonce_secret": NONCE_SECRET,
    }
    if url is not None:
        settings["attesto.sqlalchemy.url"] = url
    return settings


def _make(settings: dict[str, str]) -> Any:
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_keystore(KEYSTORE)
        config.set_attesto_client_store(HostClients())
        config.set_attesto_principal_store(HostPrincipals())
        config.set_attesto_consent_policy(Consent())
    return config.make_wsgi_app()


class _Late:
    """A WSGI app bound after the server knows its port (the issuer names the port)."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture
def server() -> Iterator[str]:
    late = _Late()
    wsgi = waitress.create_server(late, host="127.0.0.1", port=0, threads=2)
    issuer = f"http://127.0.0.1:{wsgi.effective_port}"  # type: ignore[union-attr]
    late.app = _make(_settings(issuer))
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    yield issuer

    def stop() -> None:
        # In the loop thread: close every channel; the loop ends when its map is empty.
        for channel in list(wsgi._map.values()):  # type: ignore[union-attr]
            channel.close()

    wsgi.trigger.pull_trigger(stop)  # type: ignore[union-attr]
    thread.join(timeout=5)
    wsgi.task_dispatcher.shutdown()  # type: ignore[union-attr]
    assert not thread.is_alive()


def _dpop_post(
    session: requests.Session, url: str, key: DPoPKey, data: dict[str, str], nonce: list[str]
) -> requests.Response:
    """POST with a DPoP proof, retrying once on use_dpop_nonce (RFC 9449 §8)."""
    for _ in range(2):
        proof = key.proof(htu=url, nonce=nonce[0] if nonce else None)
        res = session.post(url, data=data, headers={"DPoP": proof}, allow_redirects=False)
        if "DPoP-Nonce" in res.headers:
            nonce[:] = [res.headers["DPoP-Nonce"]]
        if res.status_code == 400 and res.json().get("error") == "use_dpop_nonce":
            continue
        return res
    return res


def test_full_flow_over_waitress(server: str) -> None:
    with requests.Session() as session:
        _flow(server, session)


def _flow(server: str, session: requests.Session) -> None:
    meta = session.get(server + "/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == server
    key = DPoPKey()
    nonce: list[str] = []
    pushed = _dpop_post(
        session,
        meta["pushed_authorization_request_endpoint"],
        key,
        {
            "response_type": "code",
            "client_id": "pub",
            "redirect_uri": "http://127.0.0.1/cb",
            "scope": "read write",
            "state": "st",
            "code_challenge": CHALLENGE.decode(),
            "code_challenge_method": "S256",
        },
        nonce,
    )
    assert pushed.status_code == 201, pushed.text
    authorize = session.get(
        meta["authorization_endpoint"],
        params={"client_id": "pub", "request_uri": pushed.json()["request_uri"]},
        headers={"X-Test-User": "alice"},
        allow_redirects=False,
    )
    assert authorize.status_code == 302
    params = parse_qs(urlsplit(authorize.headers["Location"]).query)
    assert params["iss"] == [server]
    assert params["state"] == ["st"]
    token_url = meta["token_endpoint"]
    tokens = _dpop_post(
        session,
        token_url,
        key,
        {
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": "http://127.0.0.1/cb",
            "code_verifier": VERIFIER,
            "client_id": "pub",
        },
        nonce,
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["Cache-Control"] == "no-store"
    body = tokens.json()
    assert body["token_type"] == "DPoP"
    refreshed = _dpop_post(
        session,
        token_url,
        key,
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "pub"},
        nonce,
    )
    assert refreshed.status_code == 200, refreshed.text
    new_refresh = refreshed.json()["refresh_token"]
    revoked = session.post(
        meta["revocation_endpoint"], data={"token": new_refresh, "client_id": "pub"}
    )
    assert revoked.status_code == 200
    again = _dpop_post(
        session,
        token_url,
        key,
        {"grant_type": "refresh_token", "refresh_token": new_refresh, "client_id": "pub"},
        nonce,
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_client_credentials_with_private_key_jwt_over_waitress(server: str) -> None:
    with requests.Session() as session:
        _client_credentials(server, session)


def _client_credentials(server: str, session: requests.Session) -> None:
    res = session.post(
        server + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(aud=server),
        },
        timeout=10,
    )
    assert res.status_code == 200, res.text
    assert res.json()["token_type"] == "Bearer"


# -- two instances, one database -----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url = request.getfixturevalue("postgresql_schemas")()
    return str(url.render_as_string(hide_password=False))


def test_par_on_one_instance_code_on_another(database_url: str) -> None:
    issuer = "http://127.0.0.1:6543"
    first, second = (_make(_settings(issuer, database_url)) for _ in range(2))
    metadata.create_all(get_server(first.registry).stores.engine)
    one = TestApp(first, extra_environ={"HTTP_HOST": "127.0.0.1:6543"})
    two = TestApp(second, extra_environ={"HTTP_HOST": "127.0.0.1:6543"})
    key = DPoPKey()
    form = {
        "response_type": "code",
        "client_id": "pub",
        "redirect_uri": "http://127.0.0.1/cb",
        "scope": "read",
        "state": "st",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
    }
    par_url = issuer + "/oauth/par"
    first_try = one.post("/oauth/par", form, headers={"DPoP": key.proof(htu=par_url)}, status=400)
    nonce = first_try.headers["DPoP-Nonce"]
    pushed = one.post(
        "/oauth/par", form, headers={"DPoP": key.proof(htu=par_url, nonce=nonce)}, status=201
    )
    res = two.get(
        "/oauth/authorize",
        {"client_id": "pub", "request_uri": pushed.json["request_uri"]},
        headers={"X-Test-User": "alice"},
        status=302,
    )
    code = parse_qs(urlsplit(res.headers["Location"]).query)["code"][0]
    token = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": VERIFIER,
        "client_id": "pub",
    }
    # The nonce from the first instance is valid on the second (shared HMAC secret).
    proof = key.proof(htu=issuer + "/oauth/token", nonce=nonce)
    tokens = two.post("/oauth/token", token, headers={"DPoP": proof}, status=200).json
    assert tokens["token_type"] == "DPoP"
    # The code is spent for the first instance too.
    proof = key.proof(htu=issuer + "/oauth/token", nonce=nonce)
    res = one.post("/oauth/token", token, headers={"DPoP": proof}, status=400)
    assert res.json["error"] == "invalid_grant"
    for app in (first, second):
        get_server(app.registry).stores.engine.dispose()
