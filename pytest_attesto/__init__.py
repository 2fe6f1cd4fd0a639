"""pytest_attesto: fixtures that let a host app test its attesto-protected routes.

Registered through the ``pytest11`` entry point (:mod:`pytest_attesto.plugin`). The fixtures
are documented in docs/testing.rst; the helper classes behind them are importable from here
for type annotations (``def test_x(attesto_client: pytest_attesto.AttestoClient)``). They are
imported on first access, so that loading the plugin imports neither pyramid nor webtest
(DESIGN.md D21).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest

# Before anything imports it: assertion rewriting covers only modules registered in time.
pytest.register_assert_rewrite("pytest_attesto.asserts")

if TYPE_CHECKING:
    from ._options import AttestoOptions
    from .asserts import Challenge, assert_challenge, assert_oauth_error, parse_challenges
    from .client import AttestoClient, Credential
    from .dpop import BROKEN_PROOF_ERRORS, BROKEN_PROOFS, BrokenProof, DPoPKey, ProofFactory
    from .flows import (
        AuthorizationServerFlow,
        RegisteredClient,
        TestClients,
        TestConsent,
        TokenResponse,
    )
    from .keys import TestKeystore
    from .tokens import TokenFactory

__all__ = [
    "BROKEN_PROOFS",
    "BROKEN_PROOF_ERRORS",
    "AttestoClient",
    "AttestoOptions",
    "AuthorizationServerFlow",
    "BrokenProof",
    "Challenge",
    "Credential",
    "DPoPKey",
    "ProofFactory",
    "RegisteredClient",
    "TestClients",
    "TestConsent",
    "TestKeystore",
    "TokenFactory",
    "TokenResponse",
    "assert_challenge",
    "assert_oauth_error",
    "parse_challenges",
]

_HOMES = {
    "AttestoOptions": "._options",
    "Challenge": ".asserts",
    "assert_challenge": ".asserts",
    "assert_oauth_error": ".asserts",
    "parse_challenges": ".asserts",
    "AttestoClient": ".client",
    "Credential": ".client",
    "BROKEN_PROOFS": ".dpop",
    "BROKEN_PROOF_ERRORS": ".dpop",
    "BrokenProof": ".dpop",
    "DPoPKey": ".dpop",
    "ProofFactory": ".dpop",
    "TestKeystore": ".keys",
    "AuthorizationServerFlow": ".flows",
    "RegisteredClient": ".flows",
    "TestClients": ".flows",
    "TestConsent": ".flows",
    "TokenResponse": ".flows",
    "TokenFactory": ".tokens",
}


if not TYPE_CHECKING:  # mypy sees the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'pytest_attesto' has no attribute {name!r}")
        return getattr(importlib.import_module(home, __name__), name)
