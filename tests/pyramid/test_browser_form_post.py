"""Chromium smoke test of the form_post page (DESIGN.md D26): a real browser runs the page's
one script under its CSP nonce, and the page's ``form-action`` lets the form reach the
redirect URI. Debian's ``chromium`` in headless mode; skipped where it is not installed. The
branches of the page are tested with WebTest in ``test_e2e_jarm.py``."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

CHROMIUM = shutil.which("chromium")
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 64).digest()).rstrip(b"=").decode()
SERVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from asrv_support import ISSUER, KEYSTORE, HostClients, HostPrincipals
    from pyramid.config import Configurator
    from pyramid.response import Response
    from waitress.server import create_server

    class Alice:
        def authenticate_resource_owner(self, request, authorization):
            return "alice"

        def consent(self, request, authorization, subject):
            return True

    def received(request):
        fields = ",".join(f"{k}={v}" for k, v in sorted(request.POST.items()))
        return Response(f"<html><body><p id=got>{fields}</p></body></html>")

    settings = {
        "attesto.keystore": "(directive)",
        "attesto.issuer": ISSUER,
        "attesto.scopes_supported": "read",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto")
        config.set_attesto_keystore(KEYSTORE)
        config.set_attesto_client_store(HostClients())
        config.set_attesto_principal_store(HostPrincipals())
        config.set_attesto_consent_policy(Alice())
        config.add_route("cb", "/cb")
        config.add_view(received, route_name="cb")
    server = create_server(config.make_wsgi_app(), host="127.0.0.1", port=0)
    print(server.effective_port, flush=True)
    server.run()
    """
)


@pytest.fixture
def port() -> Iterator[int]:
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", SERVER, str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_form_post_page_submits_itself_in_chromium_form_post_2_d15(port: int) -> None:
    assert CHROMIUM is not None
    origin = f"http://127.0.0.1:{port}"
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "pub",
            "redirect_uri": f"{origin}/cb",
            "scope": "read",
            "state": "s1",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            "response_mode": "form_post",
        }
    )
    dom = subprocess.run(  # noqa: S603 - the system chromium, our URL
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            f"{origin}/oauth/authorize?{query}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # The browser ran the nonce'd script and posted the form to the redirect URI.
    assert '<p id="got">code=' in dom
    assert ",iss=https://id.example,state=s1</p>" in dom
