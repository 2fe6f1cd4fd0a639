"""The demo host application (``make demo`` / ``attesto demo``).

A complete host app that uses only the public API: it includes ``pyramid_attesto`` with a
loopback issuer, keeps its signing keys in ``var/demo-keys.json`` (generated on first start,
so tokens survive a restart) and its data in ``var/demo.sqlite``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pyramid.config import Configurator

from pyramid_attesto.core.keys import generate_key

__all__ = ["DEFAULT_PORT", "make_app", "serve"]

DEFAULT_PORT = 6543


def _key_file(var: Path) -> Path:
    path = var / "demo-keys.json"
    if not path.exists():
        var.mkdir(parents=True, exist_ok=True)
        keys = {"keys": [generate_key("ES256"), generate_key("RS256")]}
        path.write_text(json.dumps(keys, indent=2), encoding="utf-8")
        path.chmod(0o600)
    return path


def make_app(*, issuer: str, var: Path) -> Any:
    """The demo WSGI application."""
    settings = {
        "attesto.issuer": issuer,
        "attesto.require_https": "false",  # a loopback issuer, for development only
        "attesto.keystore": str(_key_file(var)),
        "attesto.scopes_supported": "openid profile offline_access read:reports",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
    return config.make_wsgi_app()


def serve(host: str = "127.0.0.1", port: int | None = None) -> int:
    """Run the demo on ``host:port`` with waitress until interrupted."""
    import waitress

    if port is None:
        port = int(os.environ.get("ATTESTO_DEMO_PORT", DEFAULT_PORT))
    issuer = f"http://{host}:{port}"
    app = make_app(issuer=issuer, var=Path.cwd() / "var")
    print(
        f"pyramid_attesto demo authorization server\n"
        f"  issuer:  {issuer}\n"
        f"  JWKS:    {issuer}/.well-known/jwks.json\n"
        f"  try:     curl -s {issuer}/.well-known/jwks.json\n",
        file=sys.stderr,
        flush=True,
    )
    waitress.serve(app, host=host, port=port, threads=4, ident="pyramid_attesto-demo")
    return 0
