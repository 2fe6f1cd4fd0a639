"""Redirect URI matching and registration (RFC 6749 §3.1.2, RFC 8252 §7.1-7.3 and §8.3,
RFC 9700 §4.1.3, DESIGN.md rule 5).

The matrices live in ``tests/fixtures/redirect_uri_*.json`` so the endpoint tests can replay
them through the authorization endpoint; each case names the clause it exercises.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import pytest

from pyramid_attesto.core import redirect_uris
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.errors import InvalidRedirectURI, is_valid_description
from pyramid_attesto.core.redirect_uris import (
    MAX_REDIRECT_URI_LENGTH,
    match_client_redirect_uri,
    match_redirect_uri,
    validate_redirect_uri_for_registration,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _cases(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text("utf-8"))["cases"]
    return cases


MATCHING = _cases("redirect_uri_matching.json")
REGISTRATION = _cases("redirect_uri_registration.json")


def test_the_matrices_are_big_enough_and_name_their_clause() -> None:
    assert len(MATCHING) >= 30
    assert len({case["id"] for case in MATCHING}) == len(MATCHING)
    assert sum(not case["match"] for case in MATCHING) >= 30
    assert all(case["rfc"] for case in MATCHING + REGISTRATION)


@pytest.mark.parametrize("case", MATCHING, ids=[case["id"] for case in MATCHING])
def test_redirect_uri_matching_matrix_rfc6749_3_1_2_3_rfc8252_7_3(case: dict[str, Any]) -> None:
    """Simple string comparison (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3); only the port of a
    loopback redirect may differ (RFC 8252 §7.3). See each case's ``rfc``."""
    got = match_redirect_uri(
        case["requested"],
        case["registered"],
        allow_loopback_any_port=case["any_port"],
        allow_localhost=case["localhost"],
    )
    assert got is case["match"], case["rfc"]


@pytest.mark.parametrize(
    "case",
    REGISTRATION,
    ids=[f"{case['application_type']}:{case['uri']!r}" for case in REGISTRATION],
)
def test_redirect_uri_registration_matrix_rfc7591_2_rfc8252_7(case: dict[str, Any]) -> None:
    """Registration-time validation (RFC 6749 §3.1.2, RFC 8252 §7.1-7.3, §8.3, RFC 9700
    §4.1.3). See each case's ``rfc``."""
    if case["reason"] is None:
        validate_redirect_uri_for_registration(case["uri"], case["application_type"])
        return
    with pytest.raises(InvalidRedirectURI) as info:
        validate_redirect_uri_for_registration(case["uri"], case["application_type"])
    assert info.value.reason == case["reason"], case["rfc"]
    assert info.value.error == "invalid_redirect_uri"
    assert info.value.status == 400
    assert info.value.description is not None
    assert is_valid_description(info.value.description)


def test_every_accepted_registration_matches_itself_exactly() -> None:
    for case in REGISTRATION:
        if case["reason"] is None:
            assert match_redirect_uri(
                case["uri"], [case["uri"]], allow_loopback_any_port=False, allow_localhost=False
            )


def test_localhost_registration_can_be_refused_rfc8252_8_3() -> None:
    """RFC 8252 §8.3: ``localhost`` is NOT RECOMMENDED; a deployment can refuse it."""
    validate_redirect_uri_for_registration("http://localhost/cb", "native")
    with pytest.raises(InvalidRedirectURI) as info:
        validate_redirect_uri_for_registration(
            "http://localhost/cb", "native", allow_localhost=False
        )
    assert info.value.reason == "localhost"
    validate_redirect_uri_for_registration("http://127.0.0.1/cb", "native", allow_localhost=False)


def test_length_cap_at_registration_and_matching() -> None:
    uri = "https://app.example.com/" + "a" * (MAX_REDIRECT_URI_LENGTH - 24)
    assert len(uri) == MAX_REDIRECT_URI_LENGTH
    validate_redirect_uri_for_registration(uri, "web")
    assert match_redirect_uri(uri, [uri], allow_loopback_any_port=False, allow_localhost=False)
    longer = uri + "a"
    with pytest.raises(InvalidRedirectURI) as info:
        validate_redirect_uri_for_registration(longer, "web")
    assert info.value.reason == "too_long"
    assert not match_redirect_uri(
        longer, [longer], allow_loopback_any_port=False, allow_localhost=False
    )


def test_non_string_input_is_refused() -> None:
    with pytest.raises(InvalidRedirectURI):
        validate_redirect_uri_for_registration(None, "web")  # type: ignore[arg-type]
    assert not match_redirect_uri(
        None,  # type: ignore[arg-type]
        ["https://app.example.com/cb"],
        allow_loopback_any_port=True,
        allow_localhost=True,
    )


def test_loopback_port_bounds_rfc8252_7_3() -> None:
    """Any port 1-65535 is accepted on a registered loopback URI (RFC 8252 §7.3)."""
    registered = ["http://127.0.0.1/cb", "http://[::1]/cb"]
    for port in (1, 80, 8080, 65535):
        for host in ("127.0.0.1", "[::1]"):
            assert match_redirect_uri(
                f"http://{host}:{port}/cb",
                registered,
                allow_loopback_any_port=True,
                allow_localhost=False,
            )
    assert not match_redirect_uri(
        "http://127.0.0.1:0/cb", registered, allow_loopback_any_port=True, allow_localhost=False
    )


def test_any_port_loopback_is_for_native_clients_only_rfc8252_7_3() -> None:
    """RFC 8252 §7.3 is about native apps: a web client's loopback URI matches exactly."""
    registered = ["http://127.0.0.1/cb", "http://localhost/cb"]
    native = Client(
        client_id="n",
        token_endpoint_auth_method="none",
        application_type="native",
        redirect_uris=registered,
    )
    web = Client(client_id="w", redirect_uris=registered)
    assert match_client_redirect_uri(native, "http://127.0.0.1:5000/cb", allow_localhost=False)
    assert not match_client_redirect_uri(native, "http://localhost:5000/cb", allow_localhost=False)
    assert match_client_redirect_uri(native, "http://localhost:5000/cb", allow_localhost=True)
    assert not match_client_redirect_uri(web, "http://127.0.0.1:5000/cb", allow_localhost=True)
    assert match_client_redirect_uri(web, "http://127.0.0.1/cb", allow_localhost=True)


def test_doctests() -> None:
    assert doctest.testmod(redirect_uris, raise_on_error=True).failed == 0
