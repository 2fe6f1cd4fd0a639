"""Dynamic client registration (RFC 7591 §2, §3; RFC 7592 §2.1, §2.3): the metadata rules,
what real connectors send, secrets kept as hashes, and the registration access token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyramid_attesto.core.client_auth import (
    ClientAuthPolicy,
    ClientAuthRequest,
    authenticate_client,
)
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import (
    InvalidClientMetadata,
    InvalidRedirectURI,
    InvalidToken,
    OAuthError,
    TemporarilyUnavailable,
    UnapprovedSoftwareStatement,
)
from pyramid_attesto.core.redirect_uris import match_client_redirect_uri
from pyramid_attesto.core.registration import (
    ClientMetadata,
    DynamicClient,
    HashedInitialAccessTokens,
    MemoryRegistrationStore,
    RegisteredClientStore,
    RegistrationContext,
    RegistrationPolicy,
    RegistrationService,
    infer_application_type,
    parse_client_metadata,
)
from pyramid_attesto.core.scopes import ScopeCatalog
from pyramid_attesto.core.secret import hash_secret
from pyramid_attesto.storage import MemoryStorage

ISSUER = "https://as.example"
ENDPOINT = f"{ISSUER}/oauth/register"
FIXTURES = Path(__file__).parent.parent / "fixtures"
REQUESTS: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "registration_requests.json").read_text()
)
EC_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}


def policy(**overrides: Any) -> RegistrationPolicy:
    return RegistrationPolicy(registration_endpoint=ENDPOINT, **overrides)


def service(
    clock: FrozenClock | None = None, **overrides: Any
) -> tuple[RegistrationService, MemoryRegistrationStore]:
    store = MemoryRegistrationStore()
    return RegistrationService(policy(**overrides), store, clock=clock or FrozenClock()), store


def refusal(body: object, **overrides: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        parse_client_metadata(body, policy(**overrides))
    return caught.value


# -- what real clients send ------------------------------------------------------------------


def test_mcp_python_sdk_registration_is_accepted_as_native_with_its_secret_method() -> None:
    """No application_type and a localhost loopback redirect: inferred native (RFC 8252)."""
    registrations, store = service()
    body = registrations.register(REQUESTS["mcp_python_sdk"])
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert body["application_type"] == "native"
    assert body["redirect_uris"] == ["http://localhost:3030/callback"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["client_secret_expires_at"] == 0
    client = store.load(body["client_id"])
    assert client is not None
    assert client.secret_hash == hash_secret(body["client_secret"])
    assert match_client_redirect_uri(
        client.client, "http://localhost:51234/callback", allow_localhost=True
    )


def test_mcp_python_sdk_public_registration_gets_no_secret() -> None:
    registrations, _ = service()
    body = registrations.register(REQUESTS["mcp_python_sdk_public"])
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    assert body["scope"] == "user"


def test_hosted_connector_asking_client_secret_post_of_a_public_only_server_gets_none() -> None:
    """claude-ai-mcp#82: the connector uses the method the response names (RFC 7591
    §3.2.1 lets the server replace it), so answer ``none`` instead of refusing."""
    registrations, store = service(auth_methods=frozenset({"none"}))
    body = registrations.register(REQUESTS["hosted_connector"])
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["application_type"] == "web"
    assert store.load(body["client_id"]).client.public  # type: ignore[union-attr]


def test_a_secret_method_is_replaced_by_the_other_secret_method() -> None:
    registrations, _ = service(auth_methods=frozenset({"client_secret_basic", "none"}))
    body = registrations.register(REQUESTS["hosted_connector"])
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret"]


def test_native_loopback_registration_matches_any_port_rfc8252_7_3() -> None:
    registrations, store = service()
    body = registrations.register(REQUESTS["native_loopback"])
    client = store.load(body["client_id"]).client  # type: ignore[union-attr]
    assert client.native
    assert match_client_redirect_uri(
        client, "http://127.0.0.1:9999/oauth/callback", allow_localhost=False
    )


def test_the_registered_secret_authenticates_at_the_token_endpoint() -> None:
    clock = FrozenClock()
    registrations, store = service(clock)
    body = registrations.register(REQUESTS["mcp_python_sdk"])
    clients = RegisteredClientStore(store, clock)
    request = ClientAuthRequest(
        form={"client_id": [body["client_id"]], "client_secret": [body["client_secret"]]},
        issuer=ISSUER,
        endpoint_url=f"{ISSUER}/oauth/token",
    )
    authenticated = authenticate_client(
        request,
        store=clients,
        replay_store=MemoryStorage(clock).replay,
        policy=ClientAuthPolicy(),
        clock=clock,
    )
    assert authenticated.method == "client_secret_post"
    assert isinstance(authenticated.client, DynamicClient)
    assert not clients.verify_client_secret(authenticated.client, "wrong")


def test_an_expired_registered_secret_no_longer_verifies() -> None:
    clock = FrozenClock()
    registrations, store = service(clock, client_secret_ttl=3600)
    body = registrations.register(REQUESTS["hosted_connector"])
    assert body["client_secret_expires_at"] == int(clock.now()) + 3600
    clients = RegisteredClientStore(store, clock)
    client = clients.load_client(body["client_id"])
    assert client is not None
    assert clients.verify_client_secret(client, body["client_secret"])
    clock.advance(3600)
    assert not clients.verify_client_secret(client, body["client_secret"])


def test_host_clients_answer_first_and_keep_their_own_secret_check() -> None:
    class Host:
        def load_client(self, client_id: str) -> Client | None:
            return Client(client_id="host") if client_id == "host" else None

        def verify_client_secret(self, client: Client, secret: str) -> bool:
            return secret == "s3cret"

        def client_secret_for_jwt(self, client: Client) -> str | None:
            return None

    clients = RegisteredClientStore(MemoryRegistrationStore(), FrozenClock(), Host())
    host_client = clients.load_client("host")
    assert host_client is not None
    assert clients.verify_client_secret(host_client, "s3cret")
    assert clients.load_client("nobody") is None


# -- the metadata rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "not_an_object"),
        ({"redirect_uris": "https://a.example/cb"}, "bad_redirect_uris"),
        ({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}, "grant_type"),
        ({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}, "grant_type"),
        (
            {"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]},
            "response_type",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "response_types": ["code id_token"]},
            "response_type",
        ),
        (
            {
                "redirect_uris": ["https://a.example/cb"],
                "grant_types": ["authorization_code"],
                "response_types": [],
            },
            "inconsistent_types",
        ),
        ({"grant_types": ["refresh_token"]}, "inconsistent_types"),
        (
            {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "magic"},
            "unsupported_auth_method",
        ),
        (
            {
                "redirect_uris": ["https://a.example/cb"],
                "token_endpoint_auth_method": "client_secret_jwt",
            },
            "unsupported_auth_method",
        ),
        (
            {
                "redirect_uris": ["https://a.example/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
            },
            "no_keys",
        ),
        (
            {
                "redirect_uris": ["https://a.example/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [EC_JWK]},
                "jwks_uri": "https://a.example/jwks",
            },
            "jwks_and_uri",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "jwks": {"keys": [dict(EC_JWK, d="x")]}},
            "private_key_in_jwks",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "jwks": {"keys": [{"kty": "EC"}]}},
            "bad_jwks",
        ),
        ({"redirect_uris": ["https://a.example/cb"], "jwks": {"keys": []}}, "bad_jwks"),
        (
            {"redirect_uris": ["https://a.example/cb"], "jwks_uri": "http://a.example/jwks"},
            "bad_jwks_uri",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"},
            "application_type",
        ),
        ({"redirect_uris": ["https://a.example/cb"], "scope": "a\\b"}, "bad_scope"),
        ({"redirect_uris": ["https://a.example/cb"], "client_name": 42}, "bad_client_name"),
        ({"redirect_uris": ["https://a.example/cb"], "client_name": "x" * 201}, "bad_client_name"),
        ({"redirect_uris": ["https://a.example/cb"], "client_name": "a\nb"}, "bad_client_name"),
        (
            {"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)"},
            "bad_logo_uri",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "client_uri": "https://u@a.example/"},
            "bad_client_uri",
        ),
        ({"redirect_uris": ["https://a.example/cb"], "contacts": "a@b.example"}, "bad_contacts"),
        (
            {"redirect_uris": ["https://a.example/cb"], "dpop_bound_access_tokens": "yes"},
            "bad_dpop_bound_access_tokens",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_signing_alg": "HS256"},
            "bad_token_endpoint_auth_signing_alg",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "none"},
            "bad_id_token_signed_response_alg",
        ),
        ({"redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, "bad_redirect_uris"),
    ],
)
def test_invalid_client_metadata_rfc7591_3_2_2(body: object, reason: str) -> None:
    error = refusal(body)
    assert isinstance(error, InvalidClientMetadata)
    assert error.reason == reason
    assert error.to_dict()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("uri", "application_type", "reason"),
    [
        ("http://app.example/cb", "web", "not_https"),
        ("https://app.example/cb#frag", "web", "fragment"),
        ("https://user@app.example/cb", "web", "userinfo"),
        ("https://*.app.example/cb", "web", "wildcard"),
        ("http://127.0.0.1:3000/cb", "web", "not_https"),
        ("http://192.168.0.1/cb", "native", "not_loopback"),
        ("javascript:alert(1)", "native", "not_reverse_domain"),
        ("https://app.example/../cb", "web", "dot_segment"),
    ],
)
def test_invalid_redirect_uris_rfc7591_3_2_2(uri: str, application_type: str, reason: str) -> None:
    error = refusal({"redirect_uris": [uri], "application_type": application_type})
    assert isinstance(error, InvalidRedirectURI)
    assert error.reason == reason


def test_redirect_uris_are_required_for_the_code_grant_rfc7591_2() -> None:
    error = refusal({"client_name": "x"})
    assert isinstance(error, InvalidRedirectURI)
    assert error.reason == "missing"


def test_localhost_can_be_turned_off_rfc8252_8_3() -> None:
    error = refusal(REQUESTS["mcp_python_sdk"], allow_localhost=False)
    assert isinstance(error, InvalidRedirectURI)
    assert error.reason == "localhost"


def test_a_software_statement_is_not_approved_rfc7591_3_2_2() -> None:
    error = refusal({"redirect_uris": ["https://a.example/cb"], "software_statement": "e.y.z"})
    assert isinstance(error, UnapprovedSoftwareStatement)


def test_a_method_the_server_does_not_grant_and_cannot_replace_is_refused() -> None:
    error = refusal(
        {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"},
        auth_methods=frozenset({"client_secret_basic"}),
    )
    assert error.reason == "auth_method_not_allowed"


def test_a_public_client_cannot_register_a_confidential_grant_rfc6749_4_4() -> None:
    error = refusal(
        {
            "redirect_uris": ["https://a.example/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "client_credentials"],
        },
        grant_types=frozenset({"authorization_code", "client_credentials"}),
    )
    assert error.reason == "public_client_grant"


def test_a_grant_the_server_does_not_enable_is_refused() -> None:
    error = refusal(
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
    )
    assert error.reason == "grant_type"


def test_a_confidential_client_credentials_client_needs_no_redirect() -> None:
    metadata = parse_client_metadata(
        {"grant_types": ["client_credentials"]},
        policy(grant_types=frozenset({"client_credentials"})),
    )
    assert metadata.response_types == ()
    assert metadata.redirect_uris == ()
    assert metadata.token_endpoint_auth_method == "client_secret_basic"


def test_private_key_jwt_with_inline_keys_is_registered() -> None:
    metadata = parse_client_metadata(
        {
            "redirect_uris": ["https://a.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [EC_JWK]},
            "token_endpoint_auth_signing_alg": "ES256",
            "dpop_bound_access_tokens": True,
        },
        policy(),
    )
    client = metadata.to_client("c1")
    assert client.jwks == {"keys": [EC_JWK]}
    assert client.dpop_bound_access_tokens
    assert metadata.to_json()["jwks"] == {"keys": [EC_JWK]}


def test_scope_is_checked_against_the_catalog_and_defaults() -> None:
    catalog = ScopeCatalog.of(["read:reports", "write:reports"])
    ok = parse_client_metadata(
        {"redirect_uris": ["https://a.example/cb"], "scope": "read:* write:reports"},
        policy(catalog=catalog),
    )
    assert ok.scope == "read:* write:reports"
    error = refusal({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}, catalog=catalog)
    assert error.reason == "unknown_scope"
    defaulted = parse_client_metadata(
        {"redirect_uris": ["https://a.example/cb"]}, policy(default_scope="read:reports")
    )
    assert defaulted.scope == "read:reports"


def test_unknown_members_are_ignored_and_not_echoed() -> None:
    registrations, _ = service()
    body = registrations.register(
        {"redirect_uris": ["https://a.example/cb"], "frobnicate": True, "client_name#ja": "x"}
    )
    assert "frobnicate" not in body
    assert "client_name#ja" not in body


def test_the_response_echoes_descriptive_metadata() -> None:
    registrations, _ = service()
    body = registrations.register(
        {
            "redirect_uris": ["https://a.example/cb"],
            "client_name": "App",
            "client_uri": "https://a.example/",
            "logo_uri": "https://a.example/logo.png",
            "tos_uri": "https://a.example/tos",
            "policy_uri": "https://a.example/privacy",
            "contacts": ["ops@a.example", "ops@a.example"],
            "software_id": "4NRB1-0XZABZI9E6-5SM3R",
            "software_version": "2.1",
        }
    )
    assert body["client_name"] == "App"
    assert body["contacts"] == ["ops@a.example"]
    assert body["software_version"] == "2.1"
    assert body["registration_client_uri"] == f"{ENDPOINT}/{body['client_id']}"


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (["http://localhost:3030/callback"], "native"),
        (["http://127.0.0.1/cb", "http://[::1]/cb"], "native"),
        (["com.example.app:/oauth2redirect"], "native"),
        (["http://localhost/cb", "https://a.example/cb"], "web"),
        (["https://a.example/cb"], "web"),
        (["http://localhost.evil.example/cb"], "web"),
        ([], "web"),
    ],
)
def test_application_type_inference(uris: list[str], expected: str) -> None:
    assert infer_application_type(uris) == expected


# -- access control, hooks and RFC 7592 ------------------------------------------------------


def test_an_initial_access_token_is_required_when_configured_rfc7591_3() -> None:
    store = MemoryRegistrationStore()
    registrations = RegistrationService(
        policy(),
        store,
        clock=FrozenClock(),
        initial_access_tokens=HashedInitialAccessTokens(
            [hash_secret("iat-1"), hash_secret("iat-2")]
        ),
    )
    body = {"redirect_uris": ["https://a.example/cb"]}
    for token in (None, "", "wrong"):
        with pytest.raises(InvalidToken) as caught:
            registrations.register(body, initial_access_token=token)
        assert caught.value.status == 401
    assert registrations.register(body, initial_access_token="iat-2")["client_id"]
    assert len(store) == 1


def test_the_gate_sees_the_metadata_and_may_refuse() -> None:
    seen: list[tuple[ClientMetadata, RegistrationContext]] = []

    class Gate:
        def check_registration(
            self, metadata: ClientMetadata, context: RegistrationContext
        ) -> None:
            seen.append((metadata, context))
            if context.remote_addr == "203.0.113.9":
                raise TemporarilyUnavailable("slow down", reason="rate_limited", status=429)

    store = MemoryRegistrationStore()
    registrations = RegistrationService(policy(), store, clock=FrozenClock(), gate=Gate())
    registrations.register(REQUESTS["hosted_connector"], remote_addr="198.51.100.1")
    with pytest.raises(TemporarilyUnavailable) as caught:
        registrations.register(REQUESTS["hosted_connector"], remote_addr="203.0.113.9")
    assert caught.value.status == 429
    assert len(store) == 1
    assert seen[0][0].client_name == "Claude"


def test_a_full_memory_store_refuses_rather_than_forgets_d18() -> None:
    store = MemoryRegistrationStore(capacity=1)
    registrations = RegistrationService(policy(), store, clock=FrozenClock())
    registrations.register(REQUESTS["hosted_connector"])
    with pytest.raises(TemporarilyUnavailable):
        registrations.register(REQUESTS["hosted_connector"])


def test_read_returns_the_registration_without_the_secret_rfc7592_2_1() -> None:
    registrations, _ = service()
    created = registrations.register(REQUESTS["hosted_connector"])
    read = registrations.read(created["client_id"], created["registration_access_token"])
    assert read["client_id"] == created["client_id"]
    assert read["redirect_uris"] == created["redirect_uris"]
    assert read["token_endpoint_auth_method"] == "client_secret_post"
    assert read["client_secret_expires_at"] == 0
    assert "client_secret" not in read
    # RFC 7592 §3: the response carries the registration access token (the one presented).
    assert read["registration_access_token"] == created["registration_access_token"]


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_read_needs_the_registration_access_token_rfc7592_2(token: str | None) -> None:
    registrations, _ = service()
    created = registrations.register(REQUESTS["hosted_connector"])
    with pytest.raises(InvalidToken) as caught:
        registrations.read(created["client_id"], token)
    assert caught.value.status == 401


def test_a_token_of_another_client_is_refused_rfc7592_2() -> None:
    registrations, _ = service()
    first = registrations.register(REQUESTS["hosted_connector"])
    second = registrations.register(REQUESTS["native_loopback"])
    with pytest.raises(InvalidToken):
        registrations.read(first["client_id"], second["registration_access_token"])
    with pytest.raises(InvalidToken):
        registrations.delete(first["client_id"], second["registration_access_token"])


def test_an_unknown_client_is_401_rfc7592_2_1() -> None:
    registrations, _ = service()
    with pytest.raises(InvalidToken):
        registrations.read("nobody", "some-token")


def test_delete_deprovisions_the_client_rfc7592_2_3() -> None:
    clock = FrozenClock()
    registrations, store = service(clock)
    created = registrations.register(REQUESTS["mcp_python_sdk"])
    token = created["registration_access_token"]
    registrations.delete(created["client_id"], token)
    assert store.load(created["client_id"]) is None
    assert RegisteredClientStore(store, clock).load_client(created["client_id"]) is None
    with pytest.raises(InvalidToken):
        registrations.read(created["client_id"], token)


def test_only_hashes_are_stored_rule_4() -> None:
    registrations, store = service()
    created = registrations.register(REQUESTS["hosted_connector"])
    stored = store.load(created["client_id"])
    assert stored is not None
    assert created["client_secret"] not in repr(stored)
    assert created["registration_access_token"] not in repr(stored)
    assert stored.registration_token_hash == hash_secret(created["registration_access_token"])
