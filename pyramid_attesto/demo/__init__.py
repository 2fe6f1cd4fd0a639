"""The demo host application (``make demo`` / ``attesto demo``).

A complete host app that uses only the public API: ``config.include("pyramid_attesto")``
with the settings of ``demo.ini`` (beside this module), a login page and a consent page
(:mod:`.host`, :mod:`.pages`), a protected API (``/api/reports`` needs ``read:reports``;
``/api/me`` any token) and a small MCP server at ``/mcp`` (:mod:`.mcp`).

State lives in ``var/`` under the working directory: ``demo.sqlite`` (the attesto tables,
migrated on start with :func:`pyramid_attesto.storage.migrate.upgrade`), ``demo-keys.json``
(the signing keys, generated on first start, mode 0600) and ``demo-consents.json`` (the
remembered consents).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory

from pyramid_attesto.core.keys import generate_key

__all__ = ["DEFAULT_PORT", "DEMO_INI", "banner", "demo_settings", "main", "make_app", "serve"]

DEFAULT_PORT = 6543
DEMO_INI = Path(__file__).with_name("demo.ini")
_INI_ORIGIN = "http://127.0.0.1:6543"


def _key_file(path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = {"keys": [generate_key("ES256"), generate_key("RS256")]}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(keys, out, indent=2)
    return path


def demo_settings(origin: str = _INI_ORIGIN, var: Path | None = None) -> dict[str, str]:
    """The ``[app:main]`` settings of ``demo.ini``, moved to ``origin`` and to ``var``."""
    from pyramid.paster import get_appsettings

    raw = get_appsettings(str(DEMO_INI), "main")
    settings = {k: v for k, v in raw.items() if k not in ("here", "__file__", "use")}
    var = var or Path.cwd() / "var"
    for key, value in settings.items():
        value = value.replace(_INI_ORIGIN, origin)
        value = value.replace("sqlite:///var/", f"sqlite:///{var}/")
        if key == "attesto.keystore" and value.startswith("var/"):
            value = str(var / value[len("var/") :])
        settings[key] = value
    return settings


def main(global_config: Mapping[str, Any] | None = None, **settings: str) -> Any:
    """The PasteDeploy application factory (``use = call:pyramid_attesto.demo:main``)."""
    return make_app(settings)


def make_app(settings: Mapping[str, str]) -> Any:
    """The demo WSGI application for ``settings`` (see :func:`demo_settings`)."""
    from pyramid_attesto.storage import migrate

    from .host import ConsentRecords, DemoClients, DemoConsent, make_clients
    from .views import add_views

    settings = dict(settings)
    issuer = settings["attesto.issuer"]
    keystore = Path(settings["attesto.keystore"])
    _key_file(keystore)
    var = keystore.parent
    migrate.upgrade(settings["attesto.sqlalchemy.url"])
    records = ConsentRecords(var / "demo-consents.json")
    settings["demo.origin"] = issuer
    settings["demo.consent_records"] = records  # type: ignore[assignment]
    session_secret = settings.pop("demo.session_secret")
    with Configurator(settings=settings) as config:
        config.set_session_factory(
            SignedCookieSessionFactory(
                session_secret,
                cookie_name="demo_session",
                httponly=True,
                samesite="Lax",
                secure=issuer.startswith("https:"),
            )
        )
        config.set_default_csrf_options(require_csrf=True)
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_client_store(DemoClients(make_clients(issuer)))
        config.set_attesto_consent_policy(DemoConsent(records))
        add_views(config)
    return config.make_wsgi_app()


def banner(issuer: str) -> str:
    """What ``attesto demo`` prints on start: the issuer, the users, three ways to try it."""
    return f"""\
pyramid_attesto demo
  issuer:       {issuer}
  metadata:     {issuer}/.well-known/oauth-authorization-server
  MCP endpoint: {issuer}/mcp
  resource metadata: {issuer}/.well-known/oauth-protected-resource/mcp
  users:        alice / wonderland, bob / builder
  clients:      demo-web (confidential, secret demo-web-secret-do-not-use-in-production)
                demo-cli (public, loopback redirect, PKCE)

Three ways to try it:
  1. curl (client credentials, then the API):
       curl -s -u demo-web:demo-web-secret-do-not-use-in-production \\
            -d grant_type=client_credentials -d scope=read:reports \\
            -d resource={issuer}/api {issuer}/oauth/token
       curl -s -H "Authorization: Bearer $TOKEN" {issuer}/api/reports
  2. the MCP Python SDK (pip install mcp): connect a streamable-HTTP client with
     OAuthClientProvider to {issuer}/mcp; it discovers everything from the 401.
  3. a browser: open {issuer}/ and follow "Try the authorization code flow".
"""


def serve(host: str = "127.0.0.1", port: int | None = None) -> int:
    """Run the demo on ``host:port`` with waitress until interrupted."""
    import waitress

    if port is None:
        port = int(os.environ.get("ATTESTO_DEMO_PORT", DEFAULT_PORT))
    issuer = f"http://{host}:{port}"
    app = make_app(demo_settings(issuer, Path.cwd() / "var"))
    print(banner(issuer), file=sys.stderr, flush=True)
    waitress.serve(app, host=host, port=port, threads=4, ident="pyramid_attesto-demo")
    return 0
