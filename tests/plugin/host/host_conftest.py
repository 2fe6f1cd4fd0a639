"""The host's conftest.py: its settings and the ``attesto_app`` pytest_attesto asks for."""

from __future__ import annotations

from typing import Any

import pytest
from reports_api import make_app


@pytest.fixture
def attesto_settings() -> dict[str, Any]:
    return {
        "attesto.issuer": "https://id.example.com",
        "attesto.resource": "https://api.example.com/api",
        "attesto.scopes_supported": "read:reports write:reports",
    }


@pytest.fixture
def attesto_app(attesto_options: Any, attesto_configure: Any) -> Any:
    return make_app(attesto_options.settings, configure=attesto_configure)
