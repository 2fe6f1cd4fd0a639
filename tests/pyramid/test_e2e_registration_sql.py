"""End to end: dynamically registered clients and Client ID Metadata Documents in the
attesto database (``attesto.registration_store = sqlalchemy``), shared by two application
instances on one database (two nodes of a cluster, or a restart) under pyramid_tm.

On SQLite every transaction is ``BEGIN IMMEDIATE``: had the registration lookup and the
code or refresh-token stores of one request used two connections, the second would wait for
the first until the busy timeout. These flows passing is the proof that a request runs in
one transaction (DESIGN.md rule 3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asrv_support import (
    HTTPS,
    ISSUER,
    KEYSTORE,
    Consent,
    HostClients,
    HostPrincipals,
    code_of,
    make_app,
    pkce_authorize,
)
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationExecutionError
from sqlalchemy import Engine, func, select
from webtest import TestApp

from pyramid_attesto.core.outbound import FetchedDocument, FetchRefused
from pyramid_attesto.server import get_server
from pyramid_attesto.storage import get_tm_session, make_engine, make_session_factory, metadata
from pyramid_attesto.storage.tables import client_id_metadata, registered_clients

REGISTER = "/oauth/register"
FIXTURES = Path(__file__).parent.parent / "fixtures"
REQUESTS: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "registration_requests.json").read_text()
)
VERIFIER = "s" * 64
CALLBACK = "http://localhost:3030/callback"
DOC_URL = "https://connector.example/oauth/client.json"
DOC_CALLBACK = "https://connector.example/oauth/callback"


class Documents:
    """The injected fetcher of one node: serves the connector's document, or nothing."""

    def __init__(self, *, serve: bool = True) -> None:
        self.serve = serve
        self.fetched: list[str] = []

    def fetch(self, url: str) -> FetchedDocument:
        self.fetched.append(url)
        if not self.serve or url != DOC_URL:
            raise FetchRefused("status")
        document = {
            "client_id": DOC_URL,
            "client_name": "Connector",
            "redirect_uris": [DOC_CALLBACK],
            "token_endpoint_auth_method": "none",
            "scope": "read",
        }
        return FetchedDocument(
            url=url, body=json.dumps(document).encode(), headers={"cache-control": "max-age=600"}
        )


def _node(url: str, fetcher: Documents | None = None, **extra: str) -> TestApp:
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.keystore": "(directive)",
        "attesto.sqlalchemy.url": url,
        "attesto.scopes_supported": "read write",
        "attesto.registration.enabled": "true",
        "attesto.registration_store": "sqlalchemy",
        "attesto.registration.default_scope": "read",
        "attesto.client_id_metadata.enabled": "true",
        **extra,
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_keystore(KEYSTORE)
        config.set_attesto_client_store(HostClients())
        config.set_attesto_principal_store(HostPrincipals())
        config.set_attesto_consent_policy(Consent())
        config.set_attesto_fetcher(fetcher or Documents())
    return TestApp(config.make_wsgi_app(), extra_environ=dict(HTTPS))


def _engine(app: TestApp) -> Engine:
    engine: Engine = get_server(app.app.registry).stores.engine
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database holding the attesto tables."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    else:
        url = request.getfixturevalue("postgresql_schemas")().render_as_string(hide_password=False)
    setup = _node(url)
    metadata.create_all(_engine(setup))
    _engine(setup).dispose()
    return url


@pytest.fixture
def nodes(database: str) -> Iterator[tuple[TestApp, TestApp]]:
    """Two application instances on the same database."""
    first, second = _node(database), _node(database)
    yield first, second
    _engine(first).dispose()
    _engine(second).dispose()


def _register(app: TestApp, body: Any, status: int = 201) -> Any:
    return app.post(REGISTER, json.dumps(body), content_type="application/json", status=status)


def _authorize(app: TestApp, client_id: str, redirect_uri: str, status: int = 302) -> Any:
    return pkce_authorize(app, client_id, redirect_uri, VERIFIER, status)


def _code(response: Any) -> str:
    return code_of(response)


def test_a_client_registered_on_one_node_authorizes_on_another_rfc7591_3(
    nodes: tuple[TestApp, TestApp],
) -> None:
    """RFC 7591 §3: the MCP Python SDK registers on node A; the authorization, the code
    redemption and the refresh run on node B and A, which share only the database."""
    a, b = nodes
    client = _register(a, REQUESTS["mcp_python_sdk"]).json
    assert client["token_endpoint_auth_method"] == "client_secret_post"
    code = _code(_authorize(b, client["client_id"], CALLBACK))
    credentials = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    tokens = b.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": VERIFIER,
            **credentials,
        },
        status=200,
    ).json
    assert tokens["scope"] == "read"
    refreshed = a.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **credentials},
        status=200,
    ).json
    assert refreshed["access_token"]
    wrong = {**credentials, "client_secret": "wrong"}
    res = a.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"], **wrong},
        status=401,
    )
    assert res.json["error"] == "invalid_client"


def test_rfc7592_read_and_delete_reach_every_node_rfc7592_2(
    nodes: tuple[TestApp, TestApp],
) -> None:
    """RFC 7592 §2.1 read on node B of a client registered on A; §2.3 delete on B, after
    which A no longer knows the client (RFC 6749 §4.1.2.1: rendered locally, not
    redirected)."""
    a, b = nodes
    client = _register(a, REQUESTS["native_loopback"]).json
    token = {"Authorization": f"Bearer {client['registration_access_token']}"}
    uri = f"{REGISTER}/{client['client_id']}"
    read = b.get(uri, headers=token, status=200).json
    assert read["client_name"] == client["client_name"]
    assert read["redirect_uris"] == client["redirect_uris"]
    b.get(uri, headers={"Authorization": "Bearer wrong"}, status=401)
    b.delete(uri, headers=token, status=204)
    res = _authorize(a, client["client_id"], client["redirect_uris"][0], status=400)
    assert "Location" not in res.headers
    a.get(uri, headers=token, status=401)


def test_rfc7592_update_on_one_node_is_seen_by_another_rfc7592_2_2(
    nodes: tuple[TestApp, TestApp],
) -> None:
    """RFC 7592 §2.2 on the SQL store: a client registered on node A replaces its metadata
    on node B (in B's request transaction); A then authorizes with the new redirect URI and
    refuses the old one. A refused update (RFC 7591 §3.2.2) and a token of another client
    (401) leave the row as it was."""
    a, b = nodes
    client = _register(a, REQUESTS["native_loopback"]).json
    other = _register(a, REQUESTS["hosted_connector"]).json
    uri = f"{REGISTER}/{client['client_id']}"
    token = {"Authorization": f"Bearer {client['registration_access_token']}"}
    new_redirect = "http://127.0.0.1:7000/new/callback"

    def put(app: TestApp, body: dict[str, Any], status: int, **headers: str) -> Any:
        return app.put(
            uri,
            json.dumps({"client_id": client["client_id"], **body}),
            headers={**token, **headers},
            content_type="application/json",
            status=status,
        )

    def row() -> Any:
        with _engine(a).connect() as conn:
            return conn.execute(
                select(registered_clients).where(
                    registered_clients.c.client_id == client["client_id"]
                )
            ).one()

    before = row()
    res = put(b, {"redirect_uris": ["http://192.168.0.1/cb"], "application_type": "native"}, 400)
    assert res.json["error"] == "invalid_redirect_uri"
    other_token = f"Bearer {other['registration_access_token']}"
    res = put(b, {"redirect_uris": [new_redirect]}, 401, Authorization=other_token)
    assert res.json["error"] == "invalid_token"
    assert row() == before
    updated = put(
        b,
        {"redirect_uris": [new_redirect], "token_endpoint_auth_method": "none", "scope": "write"},
        200,
    ).json
    assert updated["redirect_uris"] == [new_redirect]
    assert "client_name" not in updated  # omitted: removed, not kept (RFC 7592 §2.2)
    read = a.get(uri, headers=token, status=200).json
    assert read == updated
    after = row()
    assert (after.issued_at, after.registration_token_hash, after.secret_hash) == (
        before.issued_at,
        before.registration_token_hash,
        None,
    )
    res = _authorize(a, client["client_id"], client["redirect_uris"][0], status=400)
    assert "Location" not in res.headers
    _code(_authorize(a, client["client_id"], new_redirect))
    with _engine(a).connect() as conn:
        assert conn.execute(select(func.count()).select_from(registered_clients)).scalar() == 2


def test_a_metadata_document_client_has_no_configuration_endpoint_rfc7592_2_2(
    nodes: tuple[TestApp, TestApp],
) -> None:
    """A Client ID Metadata Document client, resolved and cached, is unknown to the client
    configuration endpoint: 401 as any client without a registration (RFC 7592 §2.2)."""
    a, _ = nodes
    _code(_authorize(a, DOC_URL, DOC_CALLBACK))
    registered = _register(a, REQUESTS["native_loopback"]).json
    res = a.put(
        f"{REGISTER}/{DOC_URL}",
        json.dumps({"client_id": DOC_URL, "redirect_uris": [DOC_CALLBACK]}),
        headers={"Authorization": f"Bearer {registered['registration_access_token']}"},
        content_type="application/json",
        status=401,
    )
    assert res.json["error"] == "invalid_token"


def test_registered_clients_survive_a_restart(database: str) -> None:
    """What one process registered, a process started later still knows."""
    before = _node(database)
    client = _register(before, REQUESTS["native_loopback"]).json
    _engine(before).dispose()
    after = _node(database)
    _code(_authorize(after, client["client_id"], client["redirect_uris"][0]))
    with _engine(after).connect() as conn:
        assert conn.execute(select(func.count()).select_from(registered_clients)).scalar() == 1
    _engine(after).dispose()


def test_a_refused_registration_stores_nothing_rfc7591_3_2_2(
    nodes: tuple[TestApp, TestApp],
) -> None:
    a, _ = nodes
    res = _register(a, {"redirect_uris": ["http://evil.example/cb"]}, status=400)
    assert res.json["error"] == "invalid_redirect_uri"
    with _engine(a).connect() as conn:
        assert conn.execute(select(func.count()).select_from(registered_clients)).scalar() == 0


def test_a_metadata_document_fetched_by_one_node_serves_another(database: str) -> None:
    """The Client ID Metadata Document cache is in the database: node B, whose fetches all
    fail, authorizes the connector from what node A fetched."""
    fetch_a, fetch_b = Documents(), Documents(serve=False)
    a, b = _node(database, fetch_a), _node(database, fetch_b)
    _code(_authorize(a, DOC_URL, DOC_CALLBACK))
    _code(_authorize(b, DOC_URL, DOC_CALLBACK))
    _code(_authorize(a, DOC_URL, DOC_CALLBACK))
    assert (fetch_a.fetched, fetch_b.fetched) == ([DOC_URL], [])
    with _engine(a).connect() as conn:
        urls = conn.execute(select(client_id_metadata.c.url)).scalars().all()
    assert urls == [DOC_URL]
    for node in (a, b):
        _engine(node).dispose()


def test_sqlalchemy_registration_store_needs_a_database() -> None:
    """DESIGN.md D24: registration on needs a registration store; ``sqlalchemy`` needs the
    attesto database."""
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.registration.enabled": "true",
        "attesto.registration_store": "sqlalchemy",
    }
    with pytest.raises(
        ConfigurationExecutionError, match=re.escape("attesto.registration_store = sqlalchemy")
    ):
        make_app(settings, directives={"set_attesto_client_store": HostClients()})


def test_registered_clients_live_in_the_hosts_dbsession(tmp_path: Path) -> None:
    """``attesto.storage = dbsession``: the registration is written through the host's own
    ``request.dbsession`` and commits with the host's transaction; the code flow that uses
    it runs in that session too."""
    engine = make_engine(f"sqlite:///{tmp_path / 'host.sqlite'}")
    metadata.create_all(engine)
    factory = make_session_factory(engine)
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.keystore": "(directive)",
        "attesto.storage": "dbsession",
        "attesto.scopes_supported": "read write",
        "attesto.registration.enabled": "true",
        "attesto.registration_store": "sqlalchemy",
        "attesto.registration.default_scope": "read",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.add_request_method(
            lambda request: get_tm_session(factory, request.tm, request), "dbsession", reify=True
        )
        config.include("pyramid_attesto")
        config.set_attesto_keystore(KEYSTORE)
        config.set_attesto_client_store(HostClients())
        config.set_attesto_principal_store(HostPrincipals())
        config.set_attesto_consent_policy(Consent())
    app = TestApp(config.make_wsgi_app(), extra_environ=dict(HTTPS))
    client = _register(app, REQUESTS["native_loopback"]).json
    # The RFC 7592 §2.2 update is written through the host's session too.
    renamed = {**REQUESTS["native_loopback"], "client_id": client["client_id"], "client_name": "B"}
    app.put(
        f"{REGISTER}/{client['client_id']}",
        json.dumps(renamed),
        headers={"Authorization": f"Bearer {client['registration_access_token']}"},
        content_type="application/json",
        status=200,
    )
    redirect = client["redirect_uris"][0]
    code = _code(_authorize(app, client["client_id"], redirect))
    tokens = app.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": VERIFIER,
            "client_id": client["client_id"],
        },
        status=200,
    ).json
    assert tokens["access_token"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(registered_clients)).scalar() == 1
        stored = conn.execute(select(registered_clients.c.client_metadata)).scalar_one()
    assert stored["client_name"] == "B"
    engine.dispose()
