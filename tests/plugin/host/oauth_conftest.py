"""conftest.py of the authorization-server host: a function-scoped app with the test client
store and the auto-consenting test user."""

from __future__ import annotations

from typing import Any

import pytest
from oauth_app import SETTINGS, make_app


@pytest.fixture
def attesto_settings() -> dict[str, Any]:
    return dict(SETTINGS)


@pytest.fixture
def attesto_app(
    attesto_options: Any, attesto_configure: Any, attesto_clients: Any, attesto_consent: Any
) -> Any:
    def configure(config: Any) -> None:
        attesto_configure(config)
        config.set_attesto_client_store(attesto_clients)
        config.set_attesto_consent_policy(attesto_consent)

    return make_app(attesto_options.settings, configure)
