"""The demo: a real server process on loopback, driven over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as res:  # noqa: S310 - loopback test URL
        return res.status, json.loads(res.read())


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
        assert f"issuer:  http://127.0.0.1:{port}" in (tmp_path / "demo.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
