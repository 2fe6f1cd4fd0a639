"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document §3, §4; MCP
2025-11-25): URL rules, document rules, redirect binding, caching (RFC 9111) and the
negative cache (DESIGN.md D18). The fetcher is injected: nothing here touches a network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyramid_attesto.core.cimd import (
    MetadataDocumentClientStore,
    MetadataDocumentPolicy,
    MetadataDocumentResolver,
    is_metadata_document_client_id,
    redirect_host,
    validate_client_id_url,
)
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import InvalidClient
from pyramid_attesto.core.outbound import FetchedDocument, FetchRefused
from pyramid_attesto.core.redirect_uris import match_client_redirect_uri
from pyramid_attesto.core.registration import DynamicClient

CONNECTOR = "https://connector.example/oauth/client-metadata.json"
CLI = "https://cli.example/oauth/cimd.json"


class FakeFetcher:
    """Serves documents from a table; counts fetches."""

    def __init__(self) -> None:
        self.documents: dict[str, FetchedDocument | FetchRefused] = {}
        self.fetched: list[str] = []

    def serve(self, url: str, document: Any, headers: dict[str, str] | None = None) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[url] = FetchedDocument(url=url, body=body, headers=headers or {})

    def fetch(self, url: str) -> FetchedDocument:
        self.fetched.append(url)
        found = self.documents.get(url)
        if found is None:
            raise FetchRefused("status")
        if isinstance(found, FetchRefused):
            raise found
        return found


def connector_document(**changes: Any) -> dict[str, Any]:
    document = {
        "client_id": CONNECTOR,
        "client_name": "Connector",
        "client_uri": "https://connector.example/",
        "redirect_uris": ["https://connector.example/oauth/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def resolver(
    fetcher: FakeFetcher, clock: FrozenClock | None = None, **policy: Any
) -> MetadataDocumentResolver:
    return MetadataDocumentResolver(
        fetcher, MetadataDocumentPolicy(**policy), clock=clock or FrozenClock()
    )


def refusal(fetcher: FakeFetcher, url: str = CONNECTOR, **policy: Any) -> str:
    with pytest.raises(InvalidClient) as caught:
        resolver(fetcher, **policy).resolve(url)
    assert caught.value.status == 400
    assert caught.value.reason is not None
    return caught.value.reason


# -- resolution ------------------------------------------------------------------------------


def test_a_connector_document_resolves_to_a_public_web_client() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document())
    client = resolver(fetcher).resolve(CONNECTOR)
    assert isinstance(client, DynamicClient)
    assert client.source == "metadata_document"
    assert client.client_id == CONNECTOR
    assert client.public
    assert client.application_type == "web"
    assert client.client_name == "Connector"
    assert client.grant_types == ("authorization_code", "refresh_token")


def test_the_documents_redirect_uris_bind_the_request_mcp_2025_11_25() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document())
    client = resolver(fetcher).resolve(CONNECTOR)
    assert match_client_redirect_uri(
        client, "https://connector.example/oauth/callback", allow_localhost=True
    )
    assert not match_client_redirect_uri(
        client, "https://evil.example/oauth/callback", allow_localhost=True
    )
    assert not match_client_redirect_uri(
        client, "https://connector.example/oauth/callback?x=1", allow_localhost=True
    )


def test_a_cli_document_with_a_localhost_redirect_is_native_with_any_port_rfc8252_7_3() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(
        CLI,
        {
            "client_id": CLI,
            "client_name": "CLI",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        },
    )
    client = resolver(fetcher).resolve(CLI)
    assert client.native
    assert client.public  # token_endpoint_auth_method defaults to none for documents
    assert match_client_redirect_uri(
        client, "http://127.0.0.1:49152/callback", allow_localhost=True
    )


def test_private_key_jwt_with_a_jwks_uri_is_accepted() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(
        CONNECTOR,
        connector_document(
            token_endpoint_auth_method="private_key_jwt",
            jwks_uri="https://connector.example/jwks.json",
        ),
    )
    client = resolver(fetcher).resolve(CONNECTOR)
    assert client.token_endpoint_auth_method == "private_key_jwt"
    assert client.jwks_uri == "https://connector.example/jwks.json"


# -- the document rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            connector_document(client_id="https://other.example/client.json"),
            "cimd_client_id_mismatch",
        ),
        (connector_document(client_id=CONNECTOR + "/"), "cimd_client_id_mismatch"),
        (connector_document(client_id=CONNECTOR.upper()), "cimd_client_id_mismatch"),
        (connector_document(client_id=None), "cimd_client_id_mismatch"),
        (connector_document(token_endpoint_auth_method="client_secret_post"), "cimd_shared_secret"),
        (
            connector_document(token_endpoint_auth_method="client_secret_basic"),
            "cimd_shared_secret",
        ),
        (connector_document(token_endpoint_auth_method="client_secret_jwt"), "cimd_shared_secret"),
        (connector_document(client_secret="s3cret"), "cimd_shared_secret"),
        (connector_document(client_secret_expires_at=0), "cimd_shared_secret"),
        (connector_document(redirect_uris=None), "cimd_no_redirect"),
        (connector_document(redirect_uris=[]), "cimd_no_redirect"),
        (connector_document(redirect_uris=["http://connector.example/cb"]), "cimd_not_https"),
        (connector_document(redirect_uris=["https://connector.example/cb#x"]), "cimd_fragment"),
        (connector_document(grant_types=["client_credentials"]), "cimd_grant_type"),
        (connector_document(token_endpoint_auth_method="private_key_jwt"), "cimd_no_keys"),
        (connector_document(software_statement="a.b.c"), "cimd_software_statement"),
        (b"not json", "cimd_not_json"),
        (b"\xff\xfe", "cimd_not_json"),
        (b"[1, 2]", "cimd_not_object"),
        (
            b'{"client_id": "https://connector.example/oauth/client-metadata.json",'
            b' "client_id": "https://other.example/"}',
            "cimd_not_json",
        ),
        (b"[" * 100_000, "cimd_not_json"),
    ],
)
def test_an_invalid_document_is_refused_cimd_4(document: Any, reason: str) -> None:
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, document)
    assert refusal(fetcher) == reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://connector.example/client.json", "cimd_not_https"),
        ("https://connector.example", "cimd_no_path"),
        ("https://connector.example/", "cimd_no_path"),
        ("https://connector.example/a/../client.json", "cimd_dot_segment"),
        ("https://connector.example/./client.json", "cimd_dot_segment"),
        ("https://connector.example/%2e%2e/client.json", "cimd_dot_segment"),
        ("https://connector.example/client.json#x", "cimd_malformed"),
        ("https://user@connector.example/client.json", "cimd_userinfo"),
        ("https://2130706433/client.json", "cimd_numeric_host"),
        ("https://localhost/client.json", "cimd_private_address"),
    ],
)
def test_a_bad_client_id_url_is_refused_without_fetching_cimd_3(url: str, reason: str) -> None:
    fetcher = FakeFetcher()
    assert refusal(fetcher, url) == reason
    assert fetcher.fetched == []


def test_validate_client_id_url_accepts_a_query() -> None:
    validate_client_id_url("https://connector.example/client.json?v=2")


def test_a_fetch_refusal_is_invalid_client_with_its_reason() -> None:
    fetcher = FakeFetcher()
    fetcher.documents[CONNECTOR] = FetchRefused("redirect")
    assert refusal(fetcher) == "cimd_redirect"


def test_host_allow_and_block_lists() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document())
    assert refusal(fetcher, blocked_hosts=frozenset({"connector.example"})) == (
        "cimd_host_not_allowed"
    )
    assert refusal(fetcher, allowed_hosts=frozenset({"other.example"})) == "cimd_host_not_allowed"
    assert fetcher.fetched == []
    allowed = resolver(fetcher, allowed_hosts=frozenset({"connector.example"}))
    assert allowed.resolve(CONNECTOR).client_id == CONNECTOR


# -- caching ---------------------------------------------------------------------------------


def test_a_document_is_cached_for_its_clamped_max_age_rfc9111_5_2_2() -> None:
    clock = FrozenClock()
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document(), {"cache-control": "max-age=5"})
    resolve = resolver(fetcher, clock, cache_floor=60).resolve
    resolve(CONNECTOR)
    clock.advance(59)
    resolve(CONNECTOR)
    assert len(fetcher.fetched) == 1  # the floor, not max-age=5
    clock.advance(1)
    resolve(CONNECTOR)
    assert len(fetcher.fetched) == 2


def test_a_long_max_age_is_capped_by_the_ceiling() -> None:
    clock = FrozenClock()
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document(), {"cache-control": "max-age=31536000"})
    resolve = resolver(fetcher, clock, cache_ceiling=3600).resolve
    resolve(CONNECTOR)
    clock.advance(3600)
    resolve(CONNECTOR)
    assert len(fetcher.fetched) == 2


def test_a_no_store_document_is_fetched_each_time_rfc9111_5_2_2_5() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document(), {"cache-control": "no-store"})
    resolve = resolver(fetcher).resolve
    resolve(CONNECTOR)
    resolve(CONNECTOR)
    assert len(fetcher.fetched) == 2


def test_a_changed_document_is_seen_after_expiry() -> None:
    clock = FrozenClock()
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document(client_name="Old"), {"cache-control": "max-age=60"})
    resolve = resolver(fetcher, clock).resolve
    assert resolve(CONNECTOR).client_name == "Old"
    fetcher.serve(CONNECTOR, connector_document(client_name="New"))
    assert resolve(CONNECTOR).client_name == "Old"
    clock.advance(60)
    assert resolve(CONNECTOR).client_name == "New"


def test_a_failure_is_remembered_for_the_negative_ttl_d18() -> None:
    clock = FrozenClock()
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document(client_id="https://other.example/x"))
    resolve = resolver(fetcher, clock, negative_ttl=30).resolve
    for _ in range(3):
        with pytest.raises(InvalidClient) as caught:
            resolve(CONNECTOR)
        assert caught.value.reason == "cimd_client_id_mismatch"
    assert len(fetcher.fetched) == 1
    fetcher.serve(CONNECTOR, connector_document())
    clock.advance(30)
    assert resolve(CONNECTOR).client_id == CONNECTOR


def test_forget_drops_the_cached_document() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document())
    documents = resolver(fetcher)
    documents.resolve(CONNECTOR)
    documents.forget(CONNECTOR)
    documents.resolve(CONNECTOR)
    assert len(fetcher.fetched) == 2


# -- the client store ------------------------------------------------------------------------


class HostClients:
    def load_client(self, client_id: str) -> Client | None:
        return Client(client_id=client_id) if client_id == "web-app" else None

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        return secret == "s3cret"

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return "x" * 32


def test_the_client_store_routes_urls_to_documents_and_the_rest_to_the_host() -> None:
    fetcher = FakeFetcher()
    fetcher.serve(CONNECTOR, connector_document())
    store = MetadataDocumentClientStore(resolver(fetcher), HostClients())
    document_client = store.load_client(CONNECTOR)
    host_client = store.load_client("web-app")
    assert document_client is not None
    assert host_client is not None
    assert store.load_client("https://unknown.example/client.json") is None
    assert store.load_client("nobody") is None
    assert not store.verify_client_secret(document_client, "anything")
    assert store.verify_client_secret(host_client, "s3cret")
    assert store.client_secret_for_jwt(document_client) is None
    assert store.client_secret_for_jwt(host_client) == "x" * 32
    assert MetadataDocumentClientStore(resolver(fetcher)).load_client("web-app") is None


def test_helpers() -> None:
    assert is_metadata_document_client_id(CONNECTOR)
    assert not is_metadata_document_client_id("s6BhdRkqt3")
    assert redirect_host("https://connector.example/oauth/callback") == "connector.example"
    assert redirect_host("http://127.0.0.1:5000/cb") == "127.0.0.1"
    assert redirect_host("com.example.app:/cb") == "com.example.app"
