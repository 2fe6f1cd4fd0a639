"""DESIGN.md D25: a DPoP client this project did not write — ``requests-oauth2client`` (its
``DPoPToken`` auth, proofs signed by jwskate) — against the resource server over real HTTP
(waitress on loopback), including its retry on a resource-server nonce (RFC 9449 §9).

The access tokens are signed by hand with ``cryptography`` (resource_support.py); the proofs
come entirely from the external library.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from resource_support import Issuer, LoopbackServer, api_view, write_jwks

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    requests_oauth2client = pytest.importorskip(
        "requests_oauth2client", reason="requests-oauth2client is pinned in requirements/dev.lock"
    )

import requests


def _app(tmp_path: Path, issuer: Issuer, port_holder: dict[str, str], **settings: str) -> Any:
    from pyramid.config import Configurator

    base = port_holder["base"]
    config_settings = {
        "attesto.issuer": "https://as.example",
        "attesto.resource": f"{base}/api",
        "attesto.keystore": str(write_jwks(tmp_path / "as.jwks", issuer)),
        "attesto.public_url": base,
        "attesto.require_https": "false",
        "attesto.scopes_supported": "read:reports",
        **settings,
    }
    with Configurator(settings=config_settings) as config:
        config.include("pyramid_attesto.resource")
        config.add_route("reports", "/api/reports")
        config.add_view(api_view, route_name="reports", renderer="json", permission="read:reports")
        return config.make_wsgi_app()


class LateApp:
    """The WSGI app, built once the loopback port (hence the resource URI) is known."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LateApp, LoopbackServer, Issuer, Path]]:
    late = LateApp()
    with LoopbackServer(late) as server:
        yield late, server, Issuer(), tmp_path


def _token(issuer: Issuer, base: str, jkt: str) -> str:
    now = int(time.time())
    return issuer.token(
        aud=f"{base}/api", iat=now, exp=now + 300, scope="read:reports", cnf={"jkt": jkt}
    )


def test_requests_oauth2client_dpop_token_is_accepted_d25_rfc9449_7(
    served: tuple[LateApp, LoopbackServer, Issuer, Path],
) -> None:
    late, server, issuer, tmp_path = served
    late.app = _app(tmp_path, issuer, {"base": server.base})
    key = requests_oauth2client.DPoPKey.generate(alg="ES256")
    token = requests_oauth2client.DPoPToken(
        _token(issuer, server.base, key.dpop_jkt), _dpop_key=key
    )
    with requests.Session() as session:
        response = session.get(f"{server.base}/api/reports?page=1", auth=token, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "DPoP"
        # A second request carries a fresh proof (new jti) and is accepted too.
        assert session.get(f"{server.base}/api/reports", auth=token, timeout=10).ok
        # The same token without its proof key is refused.
        stolen = session.get(
            f"{server.base}/api/reports",
            headers={"Authorization": f"Bearer {token.access_token}"},
            timeout=10,
        )
        assert stolen.status_code == 401
        assert stolen.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')


def test_requests_oauth2client_retries_on_a_resource_server_nonce_d25_rfc9449_9(
    served: tuple[LateApp, LoopbackServer, Issuer, Path],
) -> None:
    late, server, issuer, tmp_path = served
    late.app = _app(
        tmp_path, issuer, {"base": server.base}, **{"attesto.dpop.resource_nonce": "true"}
    )
    key = requests_oauth2client.DPoPKey.generate(alg="ES256")
    token = requests_oauth2client.DPoPToken(
        _token(issuer, server.base, key.dpop_jkt), _dpop_key=key
    )
    with requests.Session() as session:
        response = session.get(f"{server.base}/api/reports", auth=token, timeout=10)
        assert response.status_code == 200, response.text
        assert key.rs_nonce  # it picked the nonce up from the 401 and retried once
        assert "WWW-Authenticate" not in response.headers
