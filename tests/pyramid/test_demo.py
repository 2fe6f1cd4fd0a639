"""The demo: a real server process on loopback, driven over real HTTP."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path

from pyramid_attesto.demo.host import CONFIDENTIAL_CLIENT_SECRET


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as res:  # noqa: S310 - loopback test URL
        return res.status, json.loads(res.read())


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as res:  # noqa: S310 - loopback
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _exercise(issuer: str) -> None:
    """The MCP endpoint's discovery challenge, a token, and a tool call over real HTTP."""
    status, headers, _ = _post(f"{issuer}/mcp", b"{}", {"Content-Type": "application/json"})
    assert status == 401
    assert f'resource_metadata="{issuer}/.well-known/oauth-protected-resource/mcp"' in (
        headers.get("WWW-Authenticate", "")
    )
    basic = base64.b64encode(f"demo-web:{CONFIDENTIAL_CLIENT_SECRET}".encode()).decode()
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "scope": "read:reports", "resource": f"{issuer}/mcp"}
    ).encode()
    status, _, body = _post(
        f"{issuer}/oauth/token",
        form,
        {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, body
    token = json.loads(body)["access_token"]
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "list_reports"}}
    status, _, body = _post(
        f"{issuer}/mcp",
        json.dumps(call).encode(),
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    assert status == 200, body
    assert json.loads(body)["result"]["structuredContent"]["reports"]


def test_attesto_demo_serves_jwks_over_http(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "ATTESTO_DEMO_PORT": str(port)}
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyramid_attesto.cli", "demo"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/.well-known/jwks.json")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert status == 200
        keys = body["keys"]
        assert isinstance(keys, list)
        assert {k["alg"] for k in keys} == {"ES256", "RS256"}
        stored = json.loads((tmp_path / "var" / "demo-keys.json").read_text())
        assert [k["kid"] for k in keys] == [k["kid"] for k in stored["keys"]]
        _exercise(f"http://127.0.0.1:{port}")
        printed = (tmp_path / "demo.log").read_text()
        assert f"issuer:       http://127.0.0.1:{port}" in printed
        assert "alice / wonderland" in printed
        assert (tmp_path / "var" / "demo.sqlite").exists()
        assert (tmp_path / "var" / "demo-keys.json").stat().st_mode & 0o077 == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
