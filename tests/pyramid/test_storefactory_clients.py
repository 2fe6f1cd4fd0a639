"""Which registration store and metadata-document cache the storage mode gives, and the
transaction they run in outside and inside a request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from asrv_support import ISSUER, make_app
from pyramid.request import Request
from pyramid.threadlocal import manager

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.core.registration import DynamicClient, Registration
from pyramid_attesto.hostpolicy import resolve_host_policy
from pyramid_attesto.server import get_server
from pyramid_attesto.storage import SqlMetadataDocumentCache, SqlRegistrationStore, metadata


def _registration(client_id: str = "c-1") -> Registration:
    return Registration(
        client=DynamicClient(client_id=client_id, redirect_uris=("https://a.example/cb",)),
        registration_token_hash="h" * 43,
    )


def test_memory_mode_has_no_sql_registration_store_and_no_shared_cache() -> None:
    factory = get_server(make_app({"attesto.issuer": ISSUER}).app.registry).stores
    assert factory.metadata_document_cache() is None
    with pytest.raises(ConfigurationError, match=re.escape("attesto.sqlalchemy.url")):
        factory.registration_store()


def test_outside_a_request_each_operation_is_its_own_transaction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    factory = get_server(
        make_app({"attesto.issuer": ISSUER, "attesto.sqlalchemy.url": url}).app.registry
    ).stores
    metadata.create_all(factory.engine)
    store = factory.registration_store()
    assert isinstance(store, SqlRegistrationStore)
    assert isinstance(factory.metadata_document_cache(), SqlMetadataDocumentCache)
    store.store(_registration())
    assert factory.registration_store().load("c-1") == _registration()
    factory.engine.dispose()


def test_dbsession_mode_needs_a_request() -> None:
    app = make_app({"attesto.issuer": ISSUER, "attesto.storage": "dbsession"})
    store = get_server(app.app.registry).stores.registration_store()
    with pytest.raises(ConfigurationError, match="while a request is served"):
        store.load("c-1")


def test_in_a_request_the_store_shares_the_request_source(tmp_path: Path) -> None:
    """The registration store and the request's stores run through one source (one
    session, one transaction, DESIGN.md rule 3)."""
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    app = make_app({"attesto.issuer": ISSUER, "attesto.sqlalchemy.url": url})
    factory = get_server(app.app.registry).stores
    metadata.create_all(factory.engine)
    request = Request.blank("/")
    request.registry = app.app.registry
    manager.push({"request": request, "registry": app.app.registry})
    try:
        factory.registration_store().store(_registration())
        first = factory.request_source(request)
        factory(request).replay.check_and_record("k", 2**40)
        assert factory.request_source(request) is first
    finally:
        manager.pop()
    assert factory.registration_store().load("c-1") is not None
    factory.engine.dispose()


def test_sqlalchemy_registration_store_without_a_storage_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("attesto.registration_store")):
        resolve_host_policy({"attesto.registration_store": "sqlalchemy"}, {}, scopes_supported=())
