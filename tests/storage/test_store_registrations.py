"""The registration store contract (RFC 7591, RFC 7592) over memory, SQLite and PostgreSQL,
and the SQL Client ID Metadata Document cache: round trips, replacement, update, delete, the
secret and registration-token hash lookups, concurrent registrations, sweeping."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import insert, select, update

from pyramid_attesto.core.cimd import (
    CachedDocument,
    MetadataDocumentPolicy,
    MetadataDocumentResolver,
)
from pyramid_attesto.core.errors import InvalidClient, InvalidToken
from pyramid_attesto.core.outbound import FetchedDocument, FetchRefused
from pyramid_attesto.core.registration import (
    DynamicClient,
    MemoryRegistrationStore,
    RegisteredClientStore,
    Registration,
    RegistrationPolicy,
    RegistrationService,
    RegistrationStore,
)
from pyramid_attesto.core.secret import hash_secret
from pyramid_attesto.storage import (
    EngineSource,
    SqlMetadataDocumentCache,
    SqlRegistrationStore,
)
from pyramid_attesto.storage.tables import client_id_metadata, registered_clients

if TYPE_CHECKING:
    from conftest import StoreBackend

NOW = 1_700_000_000
JWKS = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            "kid": "k1",
        }
    ]
}
ENDPOINT = "https://id.example/oauth/register"


def _store(backend: StoreBackend) -> RegistrationStore:
    if backend.engine is None:
        return MemoryRegistrationStore()
    return SqlRegistrationStore(EngineSource(backend.engine))


@pytest.fixture
def registrations(store_backend: StoreBackend) -> RegistrationStore:
    """An empty registration store of the parametrized kind."""
    return _store(store_backend)


def _client(client_id: str = "c-1", **overrides: Any) -> DynamicClient:
    values: dict[str, Any] = {
        "client_id": client_id,
        "token_endpoint_auth_method": "private_key_jwt",
        "redirect_uris": ("https://app.example/cb", "https://app.example/cb2"),
        "grant_types": ("authorization_code", "refresh_token"),
        "response_types": ("code",),
        "scope": "read write",
        "application_type": "web",
        "jwks": JWKS,
        "token_endpoint_auth_signing_alg": "ES256",
        "id_token_signed_response_alg": "ES256",
        "dpop_bound_access_tokens": True,
        "client_name": "App ü",
        "client_uri": "https://app.example/",
        "logo_uri": "https://app.example/logo.png",
        "tos_uri": "https://app.example/tos",
        "policy_uri": "https://app.example/policy",
        "contacts": ("ops@app.example", "sec@app.example"),
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "software_version": "2.1",
        "issued_at": NOW,
    }
    values.update(overrides)
    return DynamicClient(**values)


def _registration(client: DynamicClient | None = None, **overrides: Any) -> Registration:
    values: dict[str, Any] = {
        "client": client or _client(),
        "registration_token_hash": hash_secret("registration-token"),
        "secret_hash": hash_secret("client-secret"),
        "secret_expires_at": NOW + 3600,
    }
    values.update(overrides)
    return Registration(**values)


# The store -------------------------------------------------------------------------------


def test_registration_round_trips_every_field(registrations: RegistrationStore) -> None:
    stored = _registration()
    registrations.store(stored)
    loaded = registrations.load("c-1")
    assert loaded == stored
    assert loaded is not None
    assert isinstance(loaded.client, DynamicClient)
    assert loaded.client.source == "registration"


def test_public_client_without_secret_round_trips(registrations: RegistrationStore) -> None:
    client = _client(
        token_endpoint_auth_method="none",
        jwks=None,
        application_type="native",
        redirect_uris=("http://127.0.0.1/cb",),
        contacts=(),
        client_name=None,
    )
    stored = _registration(client, secret_hash=None, secret_expires_at=0)
    registrations.store(stored)
    assert registrations.load("c-1") == stored


def test_store_replaces_a_registration(registrations: RegistrationStore) -> None:
    registrations.store(_registration())
    replaced = _registration(
        _client(scope="read"), registration_token_hash=hash_secret("rotated"), secret_expires_at=0
    )
    registrations.store(replaced)
    assert registrations.load("c-1") == replaced


def test_update_replaces_only_a_client_that_is_there_rfc7592_2_2(
    registrations: RegistrationStore,
) -> None:
    """RFC 7592 §2.2: every member is replaced (none is merged); an update of a client that
    is not there stores nothing; the other clients are untouched."""
    registrations.store(_registration())
    other = _registration(_client("c-2"))
    registrations.store(other)
    replaced = _registration(
        _client(
            token_endpoint_auth_method="none",
            jwks=None,
            redirect_uris=("http://127.0.0.1/cb",),
            application_type="native",
            scope=None,
            client_name=None,
            contacts=(),
            dpop_bound_access_tokens=False,
        ),
        secret_hash=None,
        secret_expires_at=0,
    )
    assert registrations.update(replaced)
    assert registrations.load("c-1") == replaced
    assert registrations.load("c-2") == other
    assert not registrations.update(_registration(_client("c-3")))
    assert registrations.load("c-3") is None
    assert not registrations.update(_registration(_client("c-1\x00")))
    assert not registrations.update(_registration(_client("c" * 300)))
    registrations.delete("c-1")
    assert not registrations.update(replaced)
    assert registrations.load("c-1") is None


def test_unknown_client_is_none(registrations: RegistrationStore) -> None:
    registrations.store(_registration())
    assert registrations.load("c-2") is None
    assert registrations.load("c-1\x00") is None
    assert registrations.load("c" * 300) is None


def test_delete_forgets_the_client_once_rfc7592_2_3(registrations: RegistrationStore) -> None:
    """RFC 7592 §2.3: after a delete the client_id is no longer valid."""
    registrations.store(_registration())
    registrations.store(_registration(_client("c-2")))
    assert registrations.delete("c-1")
    assert registrations.load("c-1") is None
    assert not registrations.delete("c-1")
    assert not registrations.delete("c-1\x00")
    assert registrations.load("c-2") is not None


def test_secret_is_verified_against_the_stored_hash_rfc7591_3_2_1(
    registrations: RegistrationStore, store_backend: StoreBackend
) -> None:
    """RFC 7591 §3.2.1: ``client_secret_expires_at`` ends the secret; a wrong secret or a
    client without one never authenticates."""
    registrations.store(_registration(_client(token_endpoint_auth_method="client_secret_basic")))
    clients = RegisteredClientStore(registrations, store_backend.clock)
    client = clients.load_client("c-1")
    assert client is not None
    assert clients.verify_client_secret(client, "client-secret")
    assert not clients.verify_client_secret(client, "client-secreT")
    store_backend.clock.advance(3600)
    assert not clients.verify_client_secret(client, "client-secret")
    registrations.store(_registration(_client("c-2"), secret_hash=None, secret_expires_at=0))
    public = clients.load_client("c-2")
    assert public is not None
    assert not clients.verify_client_secret(public, "")


def _service(registrations: RegistrationStore, backend: StoreBackend) -> RegistrationService:
    return RegistrationService(
        RegistrationPolicy(registration_endpoint=ENDPOINT, client_secret_ttl=600),
        registrations,
        clock=backend.clock,
    )


def test_registration_access_token_is_checked_against_its_hash_rfc7592_3(
    registrations: RegistrationStore, store_backend: StoreBackend
) -> None:
    """RFC 7592 §3: read and delete need the client's registration access token."""
    service = _service(registrations, store_backend)
    answer = service.register({"redirect_uris": ["https://app.example/cb"], "client_name": "App"})
    client_id, token = answer["client_id"], answer["registration_access_token"]
    read = service.read(client_id, token)
    assert read["client_name"] == "App"
    assert read["client_secret_expires_at"] == NOW + 600
    for wrong in ("wrong", answer["client_secret"]):
        with pytest.raises(InvalidToken):
            service.read(client_id, wrong)
    service.delete(client_id, token)
    with pytest.raises(InvalidToken):
        service.read(client_id, token)


def test_an_update_through_the_service_round_trips_rfc7592_2_2(
    registrations: RegistrationStore, store_backend: StoreBackend
) -> None:
    """RFC 7592 §2.2 on each store: the new metadata are read back, the registration access
    token and the secret keep working, a move to ``none`` drops the secret."""
    service = _service(registrations, store_backend)
    answer = service.register(
        {"redirect_uris": ["https://app.example/cb"], "client_name": "App", "scope": "read"}
    )
    client_id, token = answer["client_id"], answer["registration_access_token"]
    store_backend.clock.advance(10)
    updated = service.update(
        client_id,
        token,
        {
            "client_id": client_id,
            "client_secret": answer["client_secret"],
            "redirect_uris": ["https://app.example/cb2", "https://app.example/cb3"],
            "contacts": ["ops@app.example"],
        },
    )
    read = service.read(client_id, token)
    assert read == updated
    assert read["redirect_uris"] == ["https://app.example/cb2", "https://app.example/cb3"]
    assert read["contacts"] == ["ops@app.example"]
    assert "client_name" not in read
    assert "scope" not in read
    assert read["client_id_issued_at"] == NOW
    assert read["client_secret_expires_at"] == NOW + 600
    clients = RegisteredClientStore(registrations, store_backend.clock)
    client = clients.load_client(client_id)
    assert client is not None
    assert clients.verify_client_secret(client, answer["client_secret"])
    service.update(
        client_id,
        token,
        {
            "client_id": client_id,
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "none",
        },
    )
    found = registrations.load(client_id)
    assert found is not None
    assert (found.secret_hash, found.secret_expires_at) == (None, 0)
    assert found.client.public
    with pytest.raises(InvalidToken):
        service.update(client_id, "wrong", {"client_id": client_id})


def test_an_update_stores_only_hashes_and_a_public_client_is_never_swept(
    sql_store_backend: StoreBackend,
) -> None:
    """DESIGN.md rule 4 for a secret issued by an update (RFC 7592 §2.2); once the client is
    public its row has no secret expiry, so the sweeper keeps it."""
    assert sql_store_backend.engine is not None
    registrations = _store(sql_store_backend)
    service = _service(registrations, sql_store_backend)
    public = {"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none"}
    answer = service.register(public)
    client_id, token = answer["client_id"], answer["registration_access_token"]
    update_body = {"client_id": client_id, "redirect_uris": ["https://app.example/cb"]}
    secret = service.update(client_id, token, update_body)["client_secret"]
    with sql_store_backend.engine.connect() as conn:
        row = conn.execute(select(registered_clients)).one()
    dumped = json.dumps([str(value) for value in row])
    assert secret not in dumped
    assert token not in dumped
    assert (row.secret_hash, row.expires_at, row.issued_at) == (hash_secret(secret), NOW + 600, NOW)
    service.update(client_id, token, {**update_body, **public, "client_secret": secret})
    sql_store_backend.clock.advance(10**6)
    assert sql_store_backend.sweep()["registered_clients"] == 0
    assert registrations.load(client_id) is not None


def test_raw_secrets_are_never_stored_rfc7591_3_2_1(sql_store_backend: StoreBackend) -> None:
    """DESIGN.md rule 4: only hashes of the client secret and registration token at rest."""
    assert sql_store_backend.engine is not None
    registrations = _store(sql_store_backend)
    answer = _service(registrations, sql_store_backend).register(
        {"redirect_uris": ["https://app.example/cb"]}
    )
    with sql_store_backend.engine.connect() as conn:
        row = conn.execute(select(registered_clients)).one()
    dumped = json.dumps([str(value) for value in row])
    assert answer["client_secret"] not in dumped
    assert answer["registration_access_token"] not in dumped
    assert row.secret_hash == hash_secret(answer["client_secret"])
    assert row.registration_token_hash == hash_secret(answer["registration_access_token"])
    assert row.expires_at == NOW + 600
    assert row.issued_at == NOW


def test_members_of_a_newer_version_are_ignored(sql_store_backend: StoreBackend) -> None:
    """A row written by a newer version (an extra metadata member) still loads."""
    assert sql_store_backend.engine is not None
    registrations = _store(sql_store_backend)
    registrations.store(_registration())
    with sql_store_backend.engine.begin() as conn:
        data = conn.execute(select(registered_clients.c.client_metadata)).scalar_one()
        data["future_member"] = {"x": 1}
        conn.execute(update(registered_clients).values(client_metadata=data))
    assert registrations.load("c-1") == _registration()


def test_concurrent_registrations_of_distinct_clients_all_persist(
    store_backend: StoreBackend,
) -> None:
    """32 registrations at once, each on its own connection: every one is kept."""
    registrations = _store(store_backend)
    service = _service(registrations, store_backend)
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(32)

    def register(n: int) -> None:
        try:
            barrier.wait()
            answers.append(
                service.register(
                    {"redirect_uris": [f"https://app{n}.example/cb"], "client_name": f"app {n}"}
                )
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({a["client_id"] for a in answers}) == 32
    for answer in answers:
        found = registrations.load(answer["client_id"])
        assert found is not None
        assert found.client.client_name == answer["client_name"]
        assert found.secret_hash == hash_secret(answer["client_secret"])


# Sweeping --------------------------------------------------------------------------------


def test_sweep_deletes_clients_only_after_their_secret_expired(
    sql_store_backend: StoreBackend,
) -> None:
    """A client whose secret expired can no longer authenticate (RFC 7591 §3.2.1) and is
    swept; one whose secret never expires, and a public client, never are."""
    registrations = _store(sql_store_backend)
    registrations.store(_registration(_client("expiring")))
    registrations.store(_registration(_client("forever"), secret_expires_at=0))
    registrations.store(_registration(_client("public"), secret_hash=None, secret_expires_at=0))
    assert sql_store_backend.sweep()["registered_clients"] == 0
    sql_store_backend.clock.advance(3601)
    assert sql_store_backend.sweep()["registered_clients"] == 1
    assert registrations.load("expiring") is None
    assert registrations.load("forever") is not None
    assert registrations.load("public") is not None
    sql_store_backend.clock.advance(10**9)
    assert sql_store_backend.sweep()["registered_clients"] == 0


def test_sweep_deletes_expired_metadata_documents(sql_store_backend: StoreBackend) -> None:
    assert sql_store_backend.engine is not None
    cache = SqlMetadataDocumentCache(
        EngineSource(sql_store_backend.engine), clock=sql_store_backend.clock
    )
    cache.put("https://a.example/c.json", CachedDocument({"client_id": "a"}, NOW + 10))
    cache.put("https://b.example/c.json", CachedDocument({"client_id": "b"}, NOW + 1000))
    assert sql_store_backend.sweep()["client_id_metadata"] == 0
    sql_store_backend.clock.advance(11)
    assert sql_store_backend.sweep()["client_id_metadata"] == 1
    with sql_store_backend.engine.connect() as conn:
        urls = conn.execute(select(client_id_metadata.c.url)).scalars().all()
    assert urls == ["https://b.example/c.json"]


# The metadata document cache -------------------------------------------------------------

DOC_URL = "https://connector.example/oauth/client.json"
DOCUMENT = {
    "client_id": DOC_URL,
    "client_name": "Connector",
    "redirect_uris": ["https://connector.example/oauth/callback"],
    "token_endpoint_auth_method": "none",
}


class Documents:
    def __init__(self, headers: dict[str, str] | None = None) -> None:
        self.fetched: list[str] = []
        self.headers = headers or {"cache-control": "max-age=600"}

    def fetch(self, url: str) -> FetchedDocument:
        self.fetched.append(url)
        if url != DOC_URL:
            raise FetchRefused("status")
        return FetchedDocument(url=url, body=json.dumps(DOCUMENT).encode(), headers=self.headers)


def test_metadata_cache_get_put_discard_and_expiry(sql_store_backend: StoreBackend) -> None:
    assert sql_store_backend.engine is not None
    cache = SqlMetadataDocumentCache(
        EngineSource(sql_store_backend.engine), clock=sql_store_backend.clock
    )
    assert cache.get(DOC_URL) is None
    cache.put(DOC_URL, CachedDocument(DOCUMENT, NOW + 60))
    assert cache.get(DOC_URL) == CachedDocument(DOCUMENT, NOW + 60)
    cache.put(DOC_URL, CachedDocument({**DOCUMENT, "client_name": "New"}, NOW + 120))
    found = cache.get(DOC_URL)
    assert found is not None
    assert found.document["client_name"] == "New"
    sql_store_backend.clock.advance(120)
    assert cache.get(DOC_URL) is None  # expired: as good as absent until swept
    cache.put(DOC_URL, CachedDocument(DOCUMENT, NOW + 1000))
    cache.discard(DOC_URL)
    assert cache.get(DOC_URL) is None
    long_url = "https://a.example/" + "x" * 3000
    cache.put(long_url, CachedDocument(DOCUMENT, NOW + 1000))  # not cached, no error
    assert cache.get(long_url) is None
    assert cache.get(DOC_URL + "\x00") is None


def _resolver(backend: StoreBackend, fetcher: Documents, **policy: Any) -> Any:
    assert backend.engine is not None
    cache = SqlMetadataDocumentCache(EngineSource(backend.engine), clock=backend.clock)
    return MetadataDocumentResolver(
        fetcher, MetadataDocumentPolicy(**policy), clock=backend.clock, cache=cache
    )


def test_a_document_fetched_by_one_node_is_used_by_another(
    sql_store_backend: StoreBackend,
) -> None:
    """Two resolvers (two nodes) on one database fetch the document once, until its
    Cache-Control lifetime ends."""
    first, second = Documents(), Documents()
    client = _resolver(sql_store_backend, first).resolve(DOC_URL)
    assert client.source == "metadata_document"
    other = _resolver(sql_store_backend, second)
    assert other.resolve(DOC_URL).redirect_uris == client.redirect_uris
    assert (first.fetched, second.fetched) == ([DOC_URL], [])
    sql_store_backend.clock.advance(600)
    other.resolve(DOC_URL)
    assert second.fetched == [DOC_URL]


def test_a_no_store_document_is_not_shared_rfc9111_5_2_2_5(
    sql_store_backend: StoreBackend,
) -> None:
    """RFC 9111 §5.2.2.5: ``no-store`` is never cached."""
    fetcher = Documents({"cache-control": "no-store"})
    resolver = _resolver(sql_store_backend, fetcher)
    resolver.resolve(DOC_URL)
    resolver.resolve(DOC_URL)
    assert fetcher.fetched == [DOC_URL, DOC_URL]


def test_a_cached_document_is_checked_against_the_current_policy(
    sql_store_backend: StoreBackend,
) -> None:
    """A host blocked after the document was cached is refused at once (not trusted from
    the cache), and ``forget`` clears the shared entry."""
    _resolver(sql_store_backend, Documents()).resolve(DOC_URL)
    blocked = _resolver(
        sql_store_backend, Documents(), blocked_hosts=frozenset({"connector.example"})
    )
    with pytest.raises(InvalidClient) as refused:
        blocked.resolve(DOC_URL)
    assert refused.value.reason == "cimd_host_not_allowed"
    fetcher = Documents()
    resolver = _resolver(sql_store_backend, fetcher)
    resolver.forget(DOC_URL)
    resolver.resolve(DOC_URL)
    assert fetcher.fetched == [DOC_URL]


def test_a_tampered_cached_document_is_refused(sql_store_backend: StoreBackend) -> None:
    """The cached document is validated again on use: one naming another client_id
    (draft-ietf-oauth-client-id-metadata-document §4) is refused, not trusted."""
    assert sql_store_backend.engine is not None
    with sql_store_backend.engine.begin() as conn:
        conn.execute(
            insert(client_id_metadata).values(
                url=DOC_URL,
                document={**DOCUMENT, "client_id": "https://evil.example/c.json"},
                expires_at=NOW + 600,
            )
        )
    with pytest.raises(InvalidClient) as refused:
        _resolver(sql_store_backend, Documents()).resolve(DOC_URL)
    assert refused.value.reason == "cimd_client_id_mismatch"
