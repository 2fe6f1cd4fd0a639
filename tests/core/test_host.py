from __future__ import annotations

import pytest

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.errors import InvalidScope
from pyramid_attesto.core.host import EVENT_NAMES, CatalogScopePolicy, Event
from pyramid_attesto.core.scopes import ScopeCatalog

POLICY = CatalogScopePolicy(ScopeCatalog.of(["read", "write", "admin"]))
CLIENT = Client(client_id="c", scope="read write")
OPEN = Client(client_id="o")


def test_no_scope_gets_the_registered_scope_rfc6749_3_3() -> None:
    assert tuple(POLICY.authorize_scope(CLIENT, (), subject=None)) == ("read", "write")


def test_no_scope_and_nothing_registered_is_invalid_scope_rfc6749_3_3() -> None:
    with pytest.raises(InvalidScope):
        POLICY.authorize_scope(OPEN, (), subject=None)


def test_requested_subset_is_granted() -> None:
    assert tuple(POLICY.authorize_scope(CLIENT, ("read",), subject=None)) == ("read",)


def test_unregistered_scope_is_invalid_scope_rfc6749_5_2() -> None:
    with pytest.raises(InvalidScope) as info:
        POLICY.authorize_scope(CLIENT, ("admin",), subject=None)
    assert info.value.reason == "not_registered"


def test_unknown_scope_is_invalid_scope_rfc6749_5_2() -> None:
    with pytest.raises(InvalidScope) as info:
        POLICY.authorize_scope(OPEN, ("other",), subject=None)
    assert info.value.reason == "unknown_scope"


def test_empty_catalog_leaves_the_registered_scope_as_the_limit() -> None:
    policy = CatalogScopePolicy(ScopeCatalog.of([]))
    assert tuple(policy.authorize_scope(CLIENT, ("read",), subject=None)) == ("read",)
    with pytest.raises(InvalidScope):
        policy.authorize_scope(CLIENT, ("other",), subject=None)


def test_event_metadata_is_read_only() -> None:
    event = Event("token_issued", metadata={"token_type": "DPoP"})
    with pytest.raises(TypeError):
        event.metadata["jti"] = "x"  # type: ignore[index]
    assert "token_issued" in EVENT_NAMES
