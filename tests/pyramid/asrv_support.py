"""Shared pieces of the authorization-server end-to-end tests: one keystore for the whole
run (RSA key generation is slow) and an app factory."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from webtest import TestApp

from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer

ISSUER = "https://id.example"
KEYSTORE = StaticKeystore(
    [private_signer(generate_key("ES256")), private_signer(generate_key("RS256"))]
)
ES256_ONLY = StaticKeystore([private_signer(generate_key("ES256"))])


def make_app(
    settings: dict[str, Any],
    *,
    keystore: Any = KEYSTORE,
    directives: dict[str, Any] | None = None,
    **include: str,
) -> TestApp:
    with Configurator(settings={"attesto.keystore": "(directive)", **settings}) as config:
        config.include("pyramid_attesto", **include)
        config.set_attesto_keystore(keystore)
        for name, value in (directives or {}).items():
            getattr(config, name)(value)
    return TestApp(config.make_wsgi_app())
