"""The pytest plugin module named by the ``pytest11`` entry point (``attesto``).

Installing the plugin adds fixtures and the ``attesto`` marker and changes nothing else: no
autouse fixture, no hook that alters a test without the marker (``-p no:attesto`` turns it
off). It imports pyramid and webtest lazily (DESIGN.md D21), so loading it costs a test
session nothing, and registering it twice (an entry point and a ``-p``) changes nothing.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from ._options import MARKER, MARKER_HELP
from .fixtures import (  # noqa: F401  (registered as fixtures by being here)
    attesto_app,
    attesto_client,
    attesto_clients,
    attesto_clock,
    attesto_configure,
    attesto_consent,
    attesto_flow,
    attesto_keystore,
    attesto_options,
    attesto_session_clients,
    attesto_session_clock,
    attesto_session_consent,
    attesto_settings,
    attesto_token,
    dpop_key,
    dpop_proof,
    options_for,
)

_NAMES = ("attesto", __name__)  # the entry point's name, and the module's


def pytest_plugin_registered(plugin: object, plugin_name: str, manager: Any) -> None:
    """Once this module is registered under one of its names, block the other, so that naming
    it again (``-p pytest_attesto.plugin`` or ``pytest_plugins = ["pytest_attesto.plugin"]``
    beside the entry point) is a no-op instead of pluggy's "already registered" error."""
    if plugin is not sys.modules[__name__]:
        return
    for name in _NAMES:
        if name != plugin_name and manager.get_plugin(name) is None:
            manager.set_blocked(name)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``attesto`` marker with its help (``pytest --markers``)."""
    if not any(line.startswith(MARKER + "(") for line in config.getini("markers")):
        config.addinivalue_line("markers", MARKER_HELP)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test whose ``attesto`` marker has a bad option, even when it uses no fixture."""
    if item.get_closest_marker(MARKER) is not None:
        settings: dict[str, Any] = {}
        options_for(item, settings)
