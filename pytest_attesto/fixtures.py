"""The fixtures of pytest_attesto (each named ``attesto_*`` or ``dpop_*``; none is autouse).

The host defines ``attesto_app`` (its WSGI app or a ``webtest.TestApp``), built with the test
keystore and clock; it may override ``attesto_settings`` (the ``attesto.*`` settings its app
uses, which tell the fixtures the issuer, the audience and the URL of the app). See
docs/testing.rst for the whole picture.

The helper modules (and with them pyramid, webob and webtest) are imported inside the
fixtures, when a test first asks for one (DESIGN.md D21).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pyramid_attesto.core.clock import FrozenClock

    from ._options import AttestoOptions
    from .client import AttestoClient
    from .dpop import DPoPKey, ProofFactory
    from .flows import AuthorizationServerFlow, TestClients, TestConsent
    from .keys import TestKeystore
    from .tokens import TokenFactory

__all__ = [
    "attesto_app",
    "attesto_client",
    "attesto_clients",
    "attesto_clock",
    "attesto_configure",
    "attesto_consent",
    "attesto_flow",
    "attesto_keystore",
    "attesto_options",
    "attesto_session_clients",
    "attesto_session_clock",
    "attesto_session_consent",
    "attesto_settings",
    "attesto_token",
    "dpop_key",
    "dpop_proof",
]

MISSING_APP = (
    "pytest_attesto: define an `attesto_app` fixture (in your conftest.py) that returns your "
    "WSGI app or a webtest.TestApp of it, built with the test keystore and clock:\n\n"
    "    @pytest.fixture\n"
    "    def attesto_app(attesto_options, attesto_configure):\n"
    "        return make_app(attesto_options.settings, configure=attesto_configure)\n\n"
    "(see the pytest_attesto docs, 'Testing your app with pytest_attesto')"
)


def options_for(
    item: pytest.Item | pytest.FixtureRequest, settings: dict[str, Any]
) -> AttestoOptions:
    """The :class:`~pytest_attesto._options.AttestoOptions` of a test; a bad marker fails it."""
    from ._options import OptionsError, resolve_options

    node = item.node if isinstance(item, pytest.FixtureRequest) else item
    markers = [(m.args, m.kwargs) for m in reversed(list(node.iter_markers("attesto")))]
    try:
        return resolve_options(settings, markers, wall_clock=time.time())
    except OptionsError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def attesto_settings() -> dict[str, Any]:
    """The ``attesto.*`` settings of the app under test (override it in your conftest).

    The fixtures read ``attesto.issuer``, ``attesto.resource`` (the first is the audience of
    minted tokens), ``attesto.public_url``, ``attesto.dpop.max_age`` and
    ``attesto.access_token_leeway`` from it. The default is a resource server at
    ``https://api.example`` trusting the issuer ``https://issuer.example``.
    """
    from ._options import DEFAULT_ISSUER, DEFAULT_RESOURCE

    return {"attesto.issuer": DEFAULT_ISSUER, "attesto.resource": DEFAULT_RESOURCE}


@pytest.fixture
def attesto_options(
    request: pytest.FixtureRequest, attesto_settings: dict[str, Any]
) -> AttestoOptions:
    """This test's options: ``attesto_settings`` under ``@pytest.mark.attesto(...)``.

    ``attesto_options.settings`` is what the host's ``attesto_app`` should build its app
    from, so that a marker's ``settings={...}`` reaches the app.
    """
    return options_for(request, attesto_settings)


@pytest.fixture(scope="session")
def attesto_keystore() -> TestKeystore:
    """The test session's keys (ES256, RS256, EdDSA), generated once.

    Give it to the app with ``config.set_attesto_keystore(attesto_keystore)``.
    """
    from .keys import TestKeystore

    return TestKeystore()


@pytest.fixture(scope="session")
def attesto_session_clock() -> FrozenClock:
    """The one frozen clock of the test session, for a session-scoped app; ``attesto_clock``
    sets it to each test's start time."""
    from ._quiet import quiet_imports

    with quiet_imports():
        from pyramid_attesto.core.clock import FrozenClock

    return FrozenClock(int(time.time()))


@pytest.fixture
def attesto_clock(
    attesto_session_clock: FrozenClock, attesto_options: AttestoOptions
) -> FrozenClock:
    """A frozen clock at the test's start time (or the marker's ``now``); ``advance(s)``
    moves it. Wire it into the app with ``config.set_attesto_clock(attesto_clock)``."""
    attesto_session_clock.set(attesto_options.now)
    return attesto_session_clock


@pytest.fixture
def attesto_configure(
    attesto_keystore: TestKeystore, attesto_clock: FrozenClock
) -> Callable[[Any], None]:
    """``configure(config)``: give a Pyramid ``Configurator`` (after
    ``config.include("pyramid_attesto")`` or ``"pyramid_attesto.resource"``) the test
    keystore and the test clock."""

    def configure(config: Any) -> None:
        config.set_attesto_keystore(attesto_keystore)
        config.set_attesto_clock(attesto_clock)

    return configure


@pytest.fixture
def attesto_token(
    attesto_keystore: TestKeystore, attesto_clock: FrozenClock, attesto_options: AttestoOptions
) -> TokenFactory:
    """Mint access tokens: ``attesto_token("alice", scopes=["read:reports"])``; see
    :class:`pytest_attesto.tokens.TokenFactory` (``.expired()``, ``.id_token()``)."""
    from .tokens import TokenFactory

    return TokenFactory(attesto_keystore, attesto_clock, attesto_options)


@pytest.fixture
def dpop_key(attesto_options: AttestoOptions) -> DPoPKey:
    """A fresh DPoP key of the test (ES256 unless the marker's ``dpop_alg`` says otherwise);
    ``dpop_key.jkt`` is what a bound token's ``cnf.jkt`` names."""
    from .dpop import DPoPKey

    return DPoPKey.generate(attesto_options.dpop_alg)


@pytest.fixture
def dpop_proof(
    dpop_key: DPoPKey, attesto_clock: FrozenClock, attesto_options: AttestoOptions
) -> ProofFactory:
    """Build DPoP proofs with ``dpop_key``: ``dpop_proof("GET", "/api", access_token=t)``,
    ``broken="wrong_htu"`` (see :data:`pytest_attesto.dpop.BROKEN_PROOFS`)."""
    from .dpop import ProofFactory

    return ProofFactory(dpop_key, attesto_clock, attesto_options)


@pytest.fixture
def attesto_app() -> Any:
    """The host's app under test: define this fixture in your conftest.py."""
    raise pytest.UsageError(MISSING_APP)


@pytest.fixture
def attesto_client(
    attesto_app: Any,
    attesto_options: AttestoOptions,
    attesto_token: TokenFactory,
    dpop_proof: ProofFactory,
) -> AttestoClient:
    """A WebTest client of ``attesto_app``; ``attesto_client.as_subject("alice",
    scopes=["read:reports"], dpop=True)`` is one that authenticates every request."""
    from .client import AttestoClient, make_testapp

    return AttestoClient(
        make_testapp(attesto_app, attesto_options), tokens=attesto_token, proofs=dpop_proof
    )


@pytest.fixture(scope="session")
def attesto_session_clients() -> TestClients:
    """The one test client store of the session, for a session-scoped app; ``attesto_clients``
    empties it for every test."""
    from .flows import TestClients

    return TestClients()


@pytest.fixture
def attesto_clients(
    attesto_session_clients: TestClients, attesto_options: AttestoOptions
) -> TestClients:
    """An in-memory client store for the app's authorization server, empty at the start of
    every test: ``config.set_attesto_client_store(attesto_clients)``; ``register(...)`` adds
    clients (their scope defaults to ``attesto.scopes_supported``)."""
    scopes = attesto_options.settings.get("attesto.scopes_supported")
    default = " ".join(scopes.split() if isinstance(scopes, str) else scopes) if scopes else None
    attesto_session_clients.reset(default_scope=default)
    return attesto_session_clients


@pytest.fixture(scope="session")
def attesto_session_consent(attesto_session_clock: FrozenClock) -> TestConsent:
    """The one test consent policy of the session, for a session-scoped app; ``attesto_consent``
    resets it for every test."""
    from .flows import TestConsent

    return TestConsent(attesto_session_clock)


@pytest.fixture
def attesto_consent(
    attesto_session_consent: TestConsent, attesto_clock: FrozenClock
) -> TestConsent:
    """An auto-consenting consent policy (nobody logged in, consent granted, at the start of
    every test): ``config.set_attesto_consent_policy(attesto_consent)``; the flows log their
    user in with it."""
    attesto_session_consent.reset()
    return attesto_session_consent


@pytest.fixture
def attesto_flow(
    attesto_client: AttestoClient,
    attesto_clients: TestClients,
    attesto_consent: TestConsent,
    attesto_options: AttestoOptions,
) -> AuthorizationServerFlow:
    """OAuth flows through the app's authorization server: ``register_client``,
    ``tokens(client, "alice", scopes=..., dpop=True)``, ``authorize``, ``exchange``,
    ``refresh``, ``client_credentials``, ``client_for(tokens)``."""
    from .flows import AuthorizationServerFlow

    return AuthorizationServerFlow(
        attesto_client, attesto_clients, attesto_consent, attesto_options
    )
