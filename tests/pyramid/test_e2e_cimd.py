"""End to end: Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document;
MCP 2025-11-25): metadata, an authorization with a URL client_id, the document's redirect
URIs binding the request, and refusals. The fetcher is injected (nothing leaves the
machine); the guard itself is tested in test_fetch.py."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asrv_support import ISSUER, Consent, as_app, verify_access_token
from webtest import TestApp

from pyramid_attesto.core.outbound import FetchedDocument, FetchRefused

CLIENT = "https://connector.example/oauth/client.json"
CALLBACK = "https://connector.example/oauth/callback"
CLI = "https://cli.example/cimd.json"
VERIFIER = "c" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
USER = {"X-Test-User": "alice"}


class Documents:
    def __init__(self) -> None:
        self.served: dict[str, Any] = {}
        self.fetched: list[str] = []

    def fetch(self, url: str) -> FetchedDocument:
        self.fetched.append(url)
        document = self.served.get(url)
        if document is None:
            raise FetchRefused("status")
        if isinstance(document, FetchRefused):
            raise document
        return FetchedDocument(url=url, body=json.dumps(document).encode(), headers={})


def _app(documents: Documents, **settings: str) -> TestApp:
    return as_app(
        {"attesto.client_id_metadata.enabled": "true", **settings},
        set_attesto_consent_policy=Consent(),
        set_attesto_fetcher=documents,
    )


def _documents() -> Documents:
    documents = Documents()
    documents.served[CLIENT] = {
        "client_id": CLIENT,
        "client_name": "Connector",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "read write",
    }
    documents.served[CLI] = {
        "client_id": CLI,
        "client_name": "CLI",
        "redirect_uris": ["http://127.0.0.1/callback"],
    }
    return documents


def _query(client_id: str = CLIENT, redirect_uri: str = CALLBACK, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "read",
        "state": "st",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **extra,
    }


def test_metadata_advertises_metadata_documents_and_none_mcp_2025_11_25() -> None:
    doc = _app(_documents()).get("/.well-known/oauth-authorization-server").json
    assert doc["client_id_metadata_document_supported"] is True
    assert "none" in doc["token_endpoint_auth_methods_supported"]


def test_without_the_setting_nothing_is_advertised_or_fetched() -> None:
    documents = _documents()
    app = as_app(set_attesto_consent_policy=Consent(), set_attesto_fetcher=documents)
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert "client_id_metadata_document_supported" not in doc
    app.get("/oauth/authorize", _query(), headers=USER, status=400)
    assert documents.fetched == []


def test_a_url_client_id_authorizes_and_redeems_its_code() -> None:
    documents = _documents()
    app = _app(documents)
    res = app.get("/oauth/authorize", _query(), headers=USER, status=302)
    location = res.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    params = parse_qs(urlsplit(location).query)
    assert params["iss"] == [ISSUER]
    tokens = app.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": CALLBACK,
            "code_verifier": VERIFIER,
            "client_id": CLIENT,
        },
        status=200,
    ).json
    token = verify_access_token(app, tokens["access_token"])
    assert (token.subject, token.client_id) == ("alice", CLIENT)
    assert tokens["refresh_token"]
    assert documents.fetched == [CLIENT]  # cached across authorize and token


def test_a_native_document_redirects_to_any_loopback_port_rfc8252_7_3() -> None:
    app = _app(_documents())
    query = _query(CLI, "http://127.0.0.1:50123/callback")
    res = app.get("/oauth/authorize", query, headers=USER, status=302)
    assert res.headers["Location"].startswith("http://127.0.0.1:50123/callback?")


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://evil.example/oauth/callback", CALLBACK + "?x=1", "https://connector.example/"],
)
def test_a_redirect_uri_outside_the_document_is_refused_locally_rule_5(redirect_uri: str) -> None:
    res = _app(_documents()).get("/oauth/authorize", _query(redirect_uri=redirect_uri), status=400)
    assert "Location" not in res.headers


@pytest.mark.parametrize(
    "document",
    [
        {"client_id": "https://other.example/client.json", "redirect_uris": [CALLBACK]},
        {"client_id": CLIENT, "redirect_uris": [CALLBACK], "client_secret": "s"},
        FetchRefused("redirect"),
        FetchRefused("private_address"),
    ],
)
def test_an_unusable_document_is_an_unknown_client_shown_locally(document: Any) -> None:
    documents = _documents()
    documents.served[CLIENT] = document
    res = _app(documents).get("/oauth/authorize", _query(), headers=USER, status=400)
    assert "Location" not in res.headers
    assert "invalid_" in res.text


def test_a_failed_document_is_not_refetched_on_every_request_d18() -> None:
    documents = _documents()
    documents.served[CLIENT] = FetchRefused("timeout")
    app = _app(documents)
    for _ in range(3):
        app.get("/oauth/authorize", _query(), headers=USER, status=400)
    assert documents.fetched == [CLIENT]


def test_a_blocked_host_is_never_fetched() -> None:
    documents = _documents()
    app = _app(documents, **{"attesto.client_id_metadata.blocked_hosts": "connector.example"})
    app.get("/oauth/authorize", _query(), headers=USER, status=400)
    assert documents.fetched == []


def test_a_document_client_cannot_use_a_secret_at_the_token_endpoint() -> None:
    app = _app(_documents())
    res = app.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT,
            "client_secret": "anything",
        },
        status=401,
    )
    assert res.json["error"] == "invalid_client"


def test_an_error_for_a_document_client_stays_local_before_interaction_d16() -> None:
    res = _app(_documents()).get(
        "/oauth/authorize", _query(scope="admin"), headers=USER, status=400
    )
    assert "invalid_scope" in res.text
