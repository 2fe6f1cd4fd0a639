"""conftest.py of a host built like the Pyramid cookiecutter: a session-scoped app and
engine, and each test in a doomed transaction that is aborted at its end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import transaction
from oauth_app import SETTINGS, get_tm_session, make_app, sqlite_engine
from webtest import TestApp

from pyramid_attesto.storage import metadata

TM_SETTINGS = {**SETTINGS, "attesto.storage": "dbsession"}


@pytest.fixture(scope="session")
def dbengine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    engine = sqlite_engine(str(tmp_path_factory.mktemp("db") / "host.sqlite"))
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(
    dbengine: Any,
    attesto_keystore: Any,
    attesto_session_clock: Any,
    attesto_session_clients: Any,
    attesto_session_consent: Any,
) -> Any:
    def configure(config: Any) -> None:
        config.set_attesto_keystore(attesto_keystore)
        config.set_attesto_clock(attesto_session_clock)
        config.set_attesto_client_store(attesto_session_clients)
        config.set_attesto_consent_policy(attesto_session_consent)

    return make_app(TM_SETTINGS, configure, engine=dbengine)


@pytest.fixture
def tm() -> Iterator[Any]:
    manager = transaction.TransactionManager(explicit=True)
    manager.begin()
    manager.doom()
    yield manager
    manager.abort()


@pytest.fixture
def dbsession(app: Any, tm: Any) -> Any:
    return get_tm_session(app.registry["dbsession_factory"], tm)


@pytest.fixture
def testapp(app: Any, tm: Any, dbsession: Any) -> Any:
    return TestApp(
        app,
        extra_environ={
            "HTTP_HOST": "example.com",
            "tm.active": True,
            "tm.manager": tm,
            "app.dbsession": dbsession,
        },
    )


@pytest.fixture
def attesto_settings() -> dict[str, Any]:
    return dict(TM_SETTINGS)


@pytest.fixture
def attesto_app(testapp: Any) -> Any:
    return testapp
