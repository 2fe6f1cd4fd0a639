"""``attesto.storage``: memory by default, the attesto tables in ``attesto.sqlalchemy.url``
(joined to pyramid_tm's transaction), or the host's ``request.dbsession``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import transaction
from asrv_support import ISSUER, make_app
from pyramid.exceptions import ConfigurationExecutionError
from pyramid.request import Request, apply_request_extensions
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.server import get_server
from pyramid_attesto.storage import metadata
from pyramid_attesto.storage.tables import metadata as tables


def _request(app: Any, **attrs: Any) -> Request:
    request = Request.blank("/")
    request.registry = app.app.registry
    for name, value in attrs.items():
        setattr(request, name, value)
    return request


def test_memory_is_the_default() -> None:
    app = make_app({"attesto.issuer": ISSUER})
    factory = get_server(app.app.registry).stores
    assert factory.mode == "memory"
    first, second = factory(_request(app)), factory(_request(app))
    assert first is second  # one process-wide memory storage
    assert first.replay.check_and_record("k", 2**40)


def test_sqlalchemy_url_joins_the_request_transaction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'attesto.db'}"
    app = make_app({"attesto.issuer": ISSUER, "attesto.sqlalchemy.url": url})
    factory = get_server(app.app.registry).stores
    assert factory.mode == "sqlalchemy"
    metadata.create_all(factory.engine)
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    assert factory(_request(app, tm=tm)).replay.check_and_record("k", 2**40)
    tm.abort()  # the record goes with the transaction
    tm.begin()
    assert factory(_request(app, tm=tm)).replay.check_and_record("k", 2**40)
    tm.commit()
    tm.begin()
    assert not factory(_request(app, tm=tm)).replay.check_and_record("k", 2**40)
    tm.abort()
    factory.engine.dispose()


def test_dbsession_uses_the_hosts_session(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    tables.create_all(engine)
    app = make_app({"attesto.issuer": ISSUER, "attesto.storage": "dbsession"})
    factory = get_server(app.app.registry).stores
    with Session(engine) as session:
        stores = factory(_request(app, dbsession=session))
        stores.revoked_access_tokens.add("jti-1", 2**40)
        session.commit()
        table = tables.tables[next(t for t in tables.tables if "revoked" in t)]
        assert session.execute(select(table)).first() is not None
    engine.dispose()
    with pytest.raises(ConfigurationError, match=re.escape("request.dbsession")):
        factory(_request(app))


def test_sqlalchemy_without_url_names_the_setting() -> None:
    with pytest.raises(ConfigurationExecutionError, match=re.escape("attesto.sqlalchemy.url")):
        make_app({"attesto.issuer": ISSUER, "attesto.storage": "sqlalchemy"})


def test_unknown_storage_names_the_setting() -> None:
    with pytest.raises(ConfigurationExecutionError, match=re.escape("attesto.storage")):
        make_app({"attesto.issuer": ISSUER, "attesto.storage": "redis"})


def test_other_databases_are_refused_at_startup() -> None:
    with pytest.raises(ConfigurationExecutionError, match="mysql"):
        make_app({"attesto.issuer": ISSUER, "attesto.sqlalchemy.url": "mysql://h/db"})


def test_request_attesto_stores_is_built_once() -> None:
    app = make_app({"attesto.issuer": ISSUER})
    request = _request(app)
    apply_request_extensions(request)
    assert request.attesto_stores is request.attesto_stores
    assert request.attesto_stores.replay.check_and_record("k", 2**40)
    assert not get_server(app.app.registry).stores(request).replay.check_and_record("k", 2**40)
    with pytest.raises(AttributeError):
        request.attesto_stores.other  # noqa: B018


def test_stores_are_built_only_when_used_rule11() -> None:
    from pyramid_attesto.storefactory import LazyStores

    built: list[int] = []
    lazy = LazyStores(
        lambda: (
            built.append(1)
            or get_server(make_app({"attesto.issuer": ISSUER}).app.registry).stores(None)
        )
    )
    codes = lazy.codes
    assert built == []
    assert codes.take("unknown") is not None
    assert lazy.replay.check_and_record("k", 2**40)
    assert built == [1]
