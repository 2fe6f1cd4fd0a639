"""The official MCP Python SDK client (``mcp`` on PyPI, its ``OAuthClientProvider``) against
the running demo, over real HTTP: discovery from the 401 (RFC 9728 ``resource_metadata``),
authorization-server metadata (RFC 8414), PKCE S256, the token request with ``resource``
(RFC 8707), then ``initialize``, ``tools/list`` and a ``tools/call`` that returns data.

Twice: once letting the SDK register itself (RFC 7591 dynamic registration, as connectors
do), once with the pre-registered public client ``demo-cli`` (its stored client information).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import waitress

from pyramid_attesto.demo import demo_settings, make_app

pytestmark = pytest.mark.slow

REDIRECT = "http://127.0.0.1:38123/callback"  # loopback, any port (RFC 8252 §7.3)


class _Late:
    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    late = _Late()
    server = waitress.create_server(late, host="127.0.0.1", port=0, threads=4)
    origin = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    late.app = make_app(demo_settings(origin, tmp_path / "var"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield origin
    server.close()
    thread.join(timeout=5)


def _field(name: str, html: str) -> str:
    found = re.search(rf'name={name} value="([^"]*)"', html)
    assert found is not None, name
    return found.group(1).replace("&amp;", "&")


@pytest.mark.parametrize("registers", [True, False], ids=["registers", "pre-registered"])
def test_mcp_sdk_discovers_authorizes_and_calls_a_tool(demo: str, registers: bool) -> None:
    import anyio
    import httpx2
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import (
        AuthorizationCodeResult,
        OAuthClientInformationFull,
        OAuthClientMetadata,
        OAuthToken,
    )

    seen: dict[str, str] = {}

    class Storage:
        """The SDK's TokenStorage: empty (the SDK registers) or the pre-registered client."""

        def __init__(self) -> None:
            self.tokens: OAuthToken | None = None
            self.client: OAuthClientInformationFull | None = None
            if not registers:
                self.client = OAuthClientInformationFull(
                    client_id="demo-cli",
                    token_endpoint_auth_method="none",
                    redirect_uris=[REDIRECT],  # type: ignore[list-item]
                    grant_types=["authorization_code", "refresh_token"],
                )

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.client

        async def set_client_info(self, client: OAuthClientInformationFull) -> None:
            self.client = client

    async def redirect_handler(url: str) -> None:
        """The user's browser: sign in as alice, allow, and read the redirect."""
        seen["authorize"] = url
        with httpx2.Client(follow_redirects=False) as browser:
            page = browser.get(url)
            login = browser.post(
                f"{demo}/login",
                data={
                    "csrf_token": _field("csrf_token", page.text),
                    "next": _field("next", page.text),
                    "ticket": _field("ticket", page.text),
                    "username": "alice",
                    "password": "wonderland",
                },
            )
            consent = browser.get(login.headers["location"])
            assert "read:reports" in consent.text
            back = browser.post(
                f"{demo}/consent",
                data={
                    "csrf_token": _field("csrf_token", consent.text),
                    "ticket": _field("ticket", consent.text),
                    "decision": "allow",
                },
            )
            seen["redirect"] = browser.get(back.headers["location"]).headers["location"]

    async def callback_handler() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(seen["redirect"]).query)
        return AuthorizationCodeResult(
            code=query["code"][0], state=query["state"][0], iss=query["iss"][0]
        )

    storage = Storage()
    results: dict[str, Any] = {}

    async def run() -> None:
        auth = OAuthClientProvider(
            server_url=f"{demo}/mcp",
            client_metadata=OAuthClientMetadata(
                redirect_uris=[REDIRECT],  # type: ignore[list-item]
                client_name="attesto test",
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )
        async with (
            httpx2.AsyncClient(auth=auth) as http,
            streamable_http_client(f"{demo}/mcp", http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            results["tools"] = await session.list_tools()
            results["call"] = await session.call_tool("get_report", {"id": "q1-2026"})

    anyio.run(run)

    authorize = parse_qs(urlsplit(seen["authorize"]).query)
    assert storage.client is not None
    if registers:  # RFC 7591 §3.2.1: the server issued a fresh client_id, used from then on
        assert storage.client.client_id not in ("demo-cli", "demo-web")
        assert storage.client.token_endpoint_auth_method == "none"
    assert authorize["client_id"] == [storage.client.client_id]
    assert authorize["code_challenge_method"] == ["S256"]
    assert authorize["resource"] == [f"{demo}/mcp"]
    assert "read:reports" in authorize["scope"][0].split()
    assert storage.tokens is not None
    assert storage.tokens.access_token
    assert {t.name for t in results["tools"].tools} == {"list_reports", "get_report"}
    call = results["call"]
    assert call.is_error is False
    assert call.structured_content == {
        "id": "q1-2026",
        "title": "Q1 2026 sales",
        "owner": "alice",
        "total": 182_400,
    }
