from __future__ import annotations

import pytest

from pyramid_attesto.core.errors import InvalidScope
from pyramid_attesto.core.scopes import (
    MAX_SCOPE_LENGTH,
    GrantedScopes,
    ScopeCatalog,
    format_scope,
    is_wildcard,
    narrow,
    parse_scope,
    resource_prefix,
)

CATALOG = ScopeCatalog.of(
    [
        "openid",
        "profile",
        "read:reports",
        "read:audit:log",
        "write:reports",
        "reports.read",
        "reports.write",
        "offline_access",
    ]
)


def test_parse_scope_rfc6749_3_3() -> None:
    assert parse_scope(None) == ()
    assert parse_scope("") == ()
    assert parse_scope("openid profile openid") == ("openid", "profile")
    assert parse_scope("a  b") == ("a", "b")
    assert parse_scope("https://api.example.com/read!#$") == ("https://api.example.com/read!#$",)
    assert format_scope(("a", "b")) == "a b"


@pytest.mark.parametrize("bad", ['a"b', "a\\b", "a\tb", "caf\u00e9", "a\nb", "\x7f"])
def test_non_nqchar_is_invalid_scope_rfc6749_3_3(bad: str) -> None:
    with pytest.raises(InvalidScope) as info:
        parse_scope(bad)
    assert info.value.reason == "charset"


def test_oversized_scope_is_refused_before_splitting() -> None:
    with pytest.raises(InvalidScope) as info:
        parse_scope("a " * (MAX_SCOPE_LENGTH // 2 + 1))
    assert info.value.reason == "too_long"


def test_wildcard_forms() -> None:
    assert is_wildcard("read:*")
    assert is_wildcard("reports.*")
    for not_wild in ("*", ":*", ".*", "a.b.*", "a:b:*", "*.read", "read:**", "read"):
        assert not is_wildcard(not_wild), not_wild
    assert resource_prefix("read:audit:log") == "read:"
    assert resource_prefix("reports.read") == "reports."
    assert resource_prefix(":x") is None
    assert resource_prefix("openid") is None


def test_grant_forms_against_the_catalog() -> None:
    assert CATALOG.is_grant_form("read:reports")
    assert CATALOG.is_grant_form("read:*")
    assert CATALOG.is_grant_form("reports.*")
    assert not CATALOG.is_grant_form("delete:*")  # no catalog scope under it
    assert not CATALOG.is_grant_form("read.*")  # separator matters
    assert not CATALOG.is_grant_form("unknown")
    assert not CATALOG.is_grant_form("*")  # system scope: not on public surfaces
    assert CATALOG.is_grant_form("*", allow_system=True)
    assert CATALOG.grant_form_errors(["openid", "nope", "*"]) == ("nope", "*")
    with pytest.raises(ValueError, match="concrete"):
        ScopeCatalog.of(["read:*"])


def test_covers() -> None:
    granted = GrantedScopes(["read:*", "profile"])
    assert granted.covers("read:reports", CATALOG)
    assert granted.covers("read:audit:log", CATALOG)
    assert granted.covers("profile", CATALOG)
    assert not granted.covers("write:reports", CATALOG)
    assert not granted.covers("reports.read", CATALOG)
    assert not granted.covers("read:unlisted", CATALOG)  # wildcards cover catalog scopes only
    assert granted.covers("read:unlisted")  # without a catalog the requirement is the catalog
    assert not granted.covers("reader:x")


def test_required_permission_is_always_concrete() -> None:
    granted = GrantedScopes(["read:*", "*", "openid"])
    for requirement in ("read:*", "*", "", "bad\\scope"):
        assert not granted.covers(requirement, CATALOG), requirement


def test_system_scope_covers_catalog_scopes_only() -> None:
    system = GrantedScopes(["*"])
    assert system.covers("write:reports", CATALOG)
    assert not system.covers("not-in-catalog", CATALOG)


def test_covers_all_and_missing() -> None:
    granted = GrantedScopes(["read:*", "openid"])
    assert granted.covers_all(["read:reports", "openid"], CATALOG)
    assert not granted.covers_all(["read:reports", "write:reports"], CATALOG)
    assert not granted.covers_all([], CATALOG)
    assert granted.missing(["read:reports", "write:reports"], CATALOG) == ("write:reports",)


def test_narrow_rfc6749_6() -> None:
    granted = ("read:*", "openid", "profile")
    assert narrow(granted, None) == granted
    assert narrow(granted, ["openid"]) == ("openid",)
    assert narrow(granted, ["read:reports"], CATALOG) == ("read:reports",)
    assert narrow(granted, ["read:*"], CATALOG) == ("read:*",)


@pytest.mark.parametrize(
    "requested", [["write:reports"], ["openid", "email"], ["*"], ["read:unlisted"], []]
)
def test_narrow_refuses_broadening_rfc6749_6(requested: list[str]) -> None:
    with pytest.raises(InvalidScope):
        narrow(("read:*", "openid"), requested, CATALOG)


def test_checks_are_linear_on_hostile_sizes() -> None:
    # A quadratic check would need ~10^10 steps here; the indexed one finishes at once.
    many = [f"read:r{i}" for i in range(100_000)]
    catalog = ScopeCatalog.of(many)
    granted = GrantedScopes(many[::-1])
    assert granted.covers_all(many, catalog)
    assert narrow(many, many, catalog) == tuple(many)
