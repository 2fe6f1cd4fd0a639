"""The client members of signed requests and responses: ``request_object_signing_alg`` and
``require_signed_request_object`` (RFC 9101 §10.5, OIDC Registration §2),
``authorization_signed_response_alg`` (JARM §3) and ``introspection_signed_response_alg``
(RFC 9701 §6) on :class:`~pyramid_attesto.core.clients.Client`, enforced by the request-object
verifier and accepted at registration only for algorithms the server enforces."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from authz_jose_helpers import public_jwk, sign
from cryptography.hazmat.primitives.asymmetric import ec

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import InvalidClientMetadata, InvalidRequestObject
from pyramid_attesto.core.registration import (
    ClientMetadata,
    RegistrationPolicy,
    parse_client_metadata,
)
from pyramid_attesto.core.request_objects import RequestObjectPolicy, RequestObjectVerifier

ISSUER = "https://as.example"
NOW = 1_700_000_000
KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT = Client(
    client_id="c1",
    token_endpoint_auth_method="none",
    redirect_uris=("https://client.example/cb",),
    jwks={"keys": [public_jwk(KEY, "k")]},
)
BODY = {"redirect_uris": ["https://client.example/cb"], "token_endpoint_auth_method": "none"}
POLICY = RegistrationPolicy(
    registration_endpoint=f"{ISSUER}/register",
    request_object_algorithms=frozenset({"ES256", "PS256"}),
    authorization_signing_algorithms=frozenset({"ES256"}),
    introspection_signing_algorithms=frozenset({"ES256"}),
)


def _object() -> str:
    claims = {"iss": "c1", "aud": ISSUER, "client_id": "c1", "exp": NOW + 60}
    return sign({"alg": "ES256", "kid": "k"}, claims, KEY)


def _verify(client: Client) -> dict[str, Any]:
    verifier = RequestObjectVerifier(
        RequestObjectPolicy.generic(), issuer=ISSUER, clock=FrozenClock(NOW)
    )
    return verifier.verify(_object(), client)


def test_client_defaults_are_unsigned_and_server_default_algorithms() -> None:
    assert CLIENT.require_signed_request_object is False
    assert CLIENT.request_object_signing_alg is None
    assert CLIENT.authorization_signed_response_alg is None
    assert CLIENT.introspection_signed_response_alg is None


def test_registered_request_object_alg_is_the_only_one_oidc_registration_2() -> None:
    assert _verify(replace(CLIENT, request_object_signing_alg="ES256"))["client_id"] == "c1"
    with pytest.raises(InvalidRequestObject) as info:
        _verify(replace(CLIENT, request_object_signing_alg="PS256"))
    assert info.value.reason == "alg_not_registered"


def test_registration_accepts_and_echoes_the_members_rfc7591_2() -> None:
    body = {
        **BODY,
        "require_signed_request_object": True,
        "request_object_signing_alg": "PS256",
        "authorization_signed_response_alg": "ES256",
        "introspection_signed_response_alg": "ES256",
    }
    metadata = parse_client_metadata(body, POLICY)
    client = metadata.to_client("c9")
    assert client.require_signed_request_object is True
    assert client.request_object_signing_alg == "PS256"
    assert client.authorization_signed_response_alg == "ES256"
    assert client.introspection_signed_response_alg == "ES256"
    echoed = metadata.to_json()
    assert {k: v for k, v in echoed.items() if k not in BODY and k != "grant_types"} == {
        "response_types": ["code"],
        "application_type": "web",
        "require_signed_request_object": True,
        "request_object_signing_alg": "PS256",
        "authorization_signed_response_alg": "ES256",
        "introspection_signed_response_alg": "ES256",
    }
    # RFC 7592 read: the same members come back (the ID-token default is filled in).
    read = ClientMetadata.of_client(client)
    assert replace(read, id_token_signed_response_alg=None) == metadata


def test_unset_members_are_not_echoed_rfc7591_3_2_1() -> None:
    echoed = parse_client_metadata(BODY, POLICY).to_json()
    for name in (
        "require_signed_request_object",
        "request_object_signing_alg",
        "authorization_signed_response_alg",
        "introspection_signed_response_alg",
    ):
        assert name not in echoed


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ({"request_object_signing_alg": "RS256"}, "bad_request_object_signing_alg"),
        ({"request_object_signing_alg": "none"}, "bad_request_object_signing_alg"),
        ({"authorization_signed_response_alg": "RS256"}, "bad_authorization_signed_response_alg"),
        ({"introspection_signed_response_alg": "HS256"}, "bad_introspection_signed_response_alg"),
        ({"require_signed_request_object": 1}, "bad_require_signed_request_object"),
    ],
)
def test_unenforced_values_are_invalid_client_metadata_rfc7591_3_2_2(
    member: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidClientMetadata) as info:
        parse_client_metadata({**BODY, **member}, POLICY)
    assert info.value.reason == reason


def test_nothing_is_registrable_where_the_feature_is_off_rfc9101_10_5() -> None:
    off = RegistrationPolicy(registration_endpoint=f"{ISSUER}/register")
    for member in (
        {"require_signed_request_object": True},
        {"request_object_signing_alg": "ES256"},
        {"authorization_signed_response_alg": "ES256"},
        {"introspection_signed_response_alg": "ES256"},
    ):
        with pytest.raises(InvalidClientMetadata):
            parse_client_metadata({**BODY, **member}, off)
    assert parse_client_metadata({**BODY, "require_signed_request_object": False}, off)
