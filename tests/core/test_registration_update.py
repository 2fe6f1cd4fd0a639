"""RFC 7592 §2.2 client update: the new metadata replace the old ones (validated as a
registration), the members of an update that are not metadata, the client secret across a
change of authentication method, and a refused update leaving the registration unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import (
    InvalidClientMetadata,
    InvalidRedirectURI,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    TemporarilyUnavailable,
    UnapprovedSoftwareStatement,
)
from pyramid_attesto.core.host import EVENT_NAMES, Event
from pyramid_attesto.core.registration import (
    ClientMetadata,
    MemoryRegistrationStore,
    RegisteredClientStore,
    Registration,
    RegistrationContext,
    RegistrationPolicy,
    RegistrationService,
)
from pyramid_attesto.core.secret import hash_secret

ENDPOINT = "https://as.example/oauth/register"
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
CONNECTOR = {
    **REQUESTS["hosted_connector"],
    "scope": "read write",
    "client_uri": "https://claude.ai/",
    "contacts": ["ops@claude.example"],
}


class Setup:
    """A registration service on a memory store, and one registered client."""

    def __init__(self, body: dict[str, Any] | None = None, **policy: Any) -> None:
        self.clock = FrozenClock()
        self.store = MemoryRegistrationStore()
        self.events: list[Event] = []
        self.service = RegistrationService(
            RegistrationPolicy(registration_endpoint=ENDPOINT, **policy),
            self.store,
            clock=self.clock,
            emit=self.events.append,
        )
        self.created = self.service.register(dict(body or CONNECTOR))
        self.client_id: str = self.created["client_id"]
        self.token: str = self.created["registration_access_token"]

    def stored(self) -> Registration:
        found = self.store.load(self.client_id)
        assert found is not None
        return found

    def update(self, body: object, token: str | None = None) -> dict[str, Any]:
        return self.service.update(self.client_id, self.token if token is None else token, body)

    def refused(self, body: object, token: str | None = None) -> OAuthError:
        before = self.stored()
        with pytest.raises(OAuthError) as caught:
            self.update(body, token)
        assert self.stored() == before  # a refused update changes nothing
        return caught.value

    def body(self, **members: Any) -> dict[str, Any]:
        """An update request: the client's id and ``members``."""
        return {"client_id": self.client_id, **members}


def test_update_replaces_the_metadata_and_keeps_the_credentials_rfc7592_2_2() -> None:
    setup = Setup()
    before = setup.stored()
    setup.clock.advance(100)
    answer = setup.update(
        setup.body(
            redirect_uris=["https://claude.ai/api/mcp/auth_callback2"],
            token_endpoint_auth_method="client_secret_post",
            grant_types=["authorization_code", "refresh_token"],
            client_name="Claude 2",
        )
    )
    assert answer["client_id"] == setup.client_id
    assert answer["client_id_issued_at"] == setup.created["client_id_issued_at"]
    assert answer["registration_client_uri"] == f"{ENDPOINT}/{setup.client_id}"
    # RFC 7592 §3: the token is in the response; it was not rotated.
    assert answer["registration_access_token"] == setup.token
    assert answer["redirect_uris"] == ["https://claude.ai/api/mcp/auth_callback2"]
    assert answer["client_name"] == "Claude 2"
    assert "client_secret" not in answer  # kept, and the server only has its hash
    assert answer["client_secret_expires_at"] == 0
    after = setup.stored()
    assert after.secret_hash == before.secret_hash
    assert after.registration_token_hash == before.registration_token_hash
    assert after.client.issued_at == before.client.issued_at
    assert after.client.redirect_uris == ("https://claude.ai/api/mcp/auth_callback2",)
    assert setup.service.read(setup.client_id, setup.token) == answer
    clients = RegisteredClientStore(setup.store, setup.clock)
    client = clients.load_client(setup.client_id)
    assert client is not None
    assert clients.verify_client_secret(client, setup.created["client_secret"])


def test_omitted_members_are_removed_or_take_their_defaults_rfc7592_2_2() -> None:
    """RFC 7592 §2.2: the values replace, not augment; omitted fields are deleted."""
    setup = Setup(default_scope="read")
    answer = setup.update(setup.body(redirect_uris=["https://claude.ai/cb"]))
    for removed in ("client_name", "client_uri", "contacts"):
        assert removed not in answer
    assert answer["scope"] == "read"  # the server's default, not the old "read write"
    assert answer["grant_types"] == ["authorization_code"]
    assert answer["token_endpoint_auth_method"] == "client_secret_basic"
    client = setup.stored().client
    assert (client.client_name, client.client_uri, tuple(client.contacts)) == (None, None, ())
    assert setup.stored().secret_hash == hash_secret(setup.created["client_secret"])


def test_the_updated_metadata_are_validated_as_a_registration_rfc7591_2() -> None:
    """The server's substitutions apply as at registration (RFC 7591 §3.2.1): an unavailable
    secret method becomes the other one, and the response names it."""
    setup = Setup(auth_methods=frozenset({"client_secret_basic", "none"}))
    answer = setup.update(
        setup.body(
            redirect_uris=["https://claude.ai/cb"], token_endpoint_auth_method="client_secret_post"
        )
    )
    assert answer["token_endpoint_auth_method"] == "client_secret_basic"


@pytest.mark.parametrize(
    ("members", "kind", "error"),
    [
        (
            {"redirect_uris": ["http://claude.ai/cb"], "application_type": "web"},
            InvalidRedirectURI,
            "invalid_redirect_uri",
        ),
        ({"client_name": "no redirect"}, InvalidRedirectURI, "invalid_redirect_uri"),
        (
            {"redirect_uris": ["https://claude.ai/cb"], "grant_types": ["implicit"]},
            InvalidClientMetadata,
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": ["https://claude.ai/cb"], "scope": "a\\b"},
            InvalidClientMetadata,
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": ["https://claude.ai/cb"], "software_statement": "a.b.c"},
            UnapprovedSoftwareStatement,
            "unapproved_software_statement",
        ),
    ],
)
def test_invalid_metadata_leave_the_registration_unchanged_rfc7591_3_2_2(
    members: dict[str, Any], kind: type[OAuthError], error: str
) -> None:
    """RFC 7592 §2.2: an invalid field is answered as RFC 7591 §3.2.2 says."""
    setup = Setup()
    refused = setup.refused(setup.body(**members))
    assert isinstance(refused, kind)
    assert refused.to_dict()["error"] == error
    assert refused.status == 400


@pytest.mark.parametrize("body", [[], "x", None, 42])
def test_a_body_that_is_not_an_object_is_invalid_client_metadata_rfc7591_3_2_2(
    body: object,
) -> None:
    error = Setup().refused(body)
    assert isinstance(error, InvalidClientMetadata)
    assert error.reason == "not_an_object"


@pytest.mark.parametrize("client_id", [None, "", "someone-else", 42, ["x"]])
def test_the_body_must_name_the_client_rfc7592_2_2(client_id: object) -> None:
    """RFC 7592 §2.2: the client MUST include its client_id, the same as issued."""
    setup = Setup()
    body: dict[str, Any] = {"redirect_uris": ["https://claude.ai/cb"]}
    if client_id is not None:
        body["client_id"] = client_id
    error = setup.refused(body)
    assert isinstance(error, InvalidRequest)
    assert error.reason == "client_id_mismatch"


@pytest.mark.parametrize(
    "secret", ["wrong", "", 42, ["x"], "\ud800", "é", "x" * 5000, "registration-token"]
)
def test_a_client_secret_must_be_the_current_one_rfc7592_2_2(secret: object) -> None:
    """RFC 7592 §2.2: a client_secret in the request MUST match the current one; the
    client cannot choose its secret."""
    setup = Setup()
    error = setup.refused(setup.body(redirect_uris=["https://claude.ai/cb"], client_secret=secret))
    assert isinstance(error, InvalidRequest)
    assert error.reason == "client_secret_mismatch"
    if isinstance(secret, str) and secret:
        assert secret not in (error.description or "")  # no secret in errors (rule 4)


def test_the_current_client_secret_or_null_is_accepted_rfc7592_2_2() -> None:
    setup = Setup()
    for secret in (setup.created["client_secret"], None):
        answer = setup.update(
            setup.body(
                redirect_uris=["https://claude.ai/cb"],
                token_endpoint_auth_method="client_secret_post",
                client_secret=secret,
            )
        )
        assert "client_secret" not in answer
    assert setup.stored().secret_hash == hash_secret(setup.created["client_secret"])


def test_a_public_client_cannot_send_a_secret_rfc7592_2_2() -> None:
    setup = Setup(REQUESTS["native_loopback"])
    error = setup.refused(
        setup.body(redirect_uris=["http://127.0.0.1/cb"], token_endpoint_auth_method="none")
        | {"client_secret": "anything"}
    )
    assert error.reason == "client_secret_mismatch"


@pytest.mark.parametrize(
    "member",
    [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ],
)
def test_server_provisioned_members_are_refused_rfc7592_2_2(member: str) -> None:
    """RFC 7592 §2.2: the request MUST NOT include them; a client echoing a read response
    is told so (invalid_request) rather than silently ignored. ``null`` is as omitted."""
    setup = Setup()
    body = setup.body(redirect_uris=["https://claude.ai/cb"])
    error = setup.refused({**body, member: setup.created.get(member, 0)})
    assert isinstance(error, InvalidRequest)
    assert error.reason == "server_member"
    assert member in (error.description or "")
    assert setup.update({**body, member: None})["redirect_uris"] == ["https://claude.ai/cb"]


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_update_needs_the_registration_access_token_rfc7592_2_2(token: str | None) -> None:
    """RFC 7592 §2.2: an invalid token is answered as RFC 6750 says (401 invalid_token),
    before the body is looked at."""
    setup = Setup()
    with pytest.raises(InvalidToken) as caught:
        setup.service.update(setup.client_id, token, [])
    assert caught.value.status == 401
    assert setup.stored().client.client_name == "Claude"


def test_a_token_of_another_client_or_an_unknown_client_is_401_rfc7592_2_2() -> None:
    """RFC 7592 §2.2: a client that does not exist is 401, as a wrong token is (no oracle);
    the secret of the client is not a registration access token."""
    setup = Setup()
    other = setup.service.register(REQUESTS["native_loopback"])
    body = setup.body(redirect_uris=["https://evil.example/cb"])
    for client_id, token in (
        (setup.client_id, other["registration_access_token"]),
        (setup.client_id, setup.created["client_secret"]),
        ("nobody", setup.token),
        ("https://connector.example/client.json", setup.token),  # a metadata document's
        ("x" * 300, setup.token),
    ):
        with pytest.raises(InvalidToken):
            setup.service.update(client_id, token, body | {"client_id": client_id})
    assert setup.stored().client.redirect_uris == ("https://claude.ai/api/mcp/auth_callback",)


def test_a_client_deleted_meanwhile_is_401_rfc7592_2_2() -> None:
    """The client was there when its token was checked and gone when its row was replaced
    (a concurrent delete): nothing is stored and the answer is 401."""

    class DeletedMeanwhile(MemoryRegistrationStore):
        def update(self, registration: Registration) -> bool:
            self.delete(registration.client_id)
            return super().update(registration)

    store = DeletedMeanwhile()
    service = RegistrationService(
        RegistrationPolicy(registration_endpoint=ENDPOINT), store, clock=FrozenClock()
    )
    created = service.register(dict(CONNECTOR))
    with pytest.raises(InvalidToken):
        service.update(
            created["client_id"],
            created["registration_access_token"],
            {"client_id": created["client_id"], "redirect_uris": ["https://claude.ai/cb"]},
        )
    assert store.load(created["client_id"]) is None


def test_a_move_to_a_secret_method_issues_a_secret_once_rfc7592_2_2() -> None:
    """RFC 7592 §2.2 allows a new secret in the response: given when a public client becomes
    confidential, with the configured lifetime, stored as a hash only (rule 4)."""
    setup = Setup(REQUESTS["native_loopback"], client_secret_ttl=600)
    assert "client_secret" not in setup.created
    setup.clock.advance(50)
    answer = setup.update(
        setup.body(
            redirect_uris=["http://127.0.0.1:6274/oauth/callback"],
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    secret = answer["client_secret"]
    assert answer["client_secret_expires_at"] == int(setup.clock.now()) + 600
    stored = setup.stored()
    assert stored.secret_hash == hash_secret(secret)
    assert secret not in repr(stored)
    clients = RegisteredClientStore(setup.store, setup.clock)
    client = clients.load_client(setup.client_id)
    assert client is not None
    assert client.confidential
    assert clients.verify_client_secret(client, secret)
    # The next update keeps that secret and does not show it again.
    again = setup.update(
        setup.body(
            redirect_uris=["http://127.0.0.1:6274/oauth/callback"],
            token_endpoint_auth_method="client_secret_basic",
            client_secret=secret,
        )
    )
    assert "client_secret" not in again
    assert setup.stored().secret_hash == hash_secret(secret)


def test_private_key_jwt_to_a_secret_method_issues_a_secret_rfc7592_2_2() -> None:
    setup = Setup(
        {
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [EC_JWK]},
        }
    )
    assert "client_secret" not in setup.created
    answer = setup.update(setup.body(redirect_uris=["https://app.example/cb"]))
    assert answer["token_endpoint_auth_method"] == "client_secret_basic"
    assert setup.stored().secret_hash == hash_secret(answer["client_secret"])
    assert "jwks" not in answer


def test_a_move_away_from_a_secret_method_drops_the_secret_rfc7592_2_2() -> None:
    setup = Setup()
    answer = setup.update(
        setup.body(redirect_uris=["https://claude.ai/cb"], token_endpoint_auth_method="none")
    )
    assert "client_secret" not in answer
    assert "client_secret_expires_at" not in answer
    stored = setup.stored()
    assert (stored.secret_hash, stored.secret_expires_at) == (None, 0)
    clients = RegisteredClientStore(setup.store, setup.clock)
    client = clients.load_client(setup.client_id)
    assert client is not None
    assert client.public
    assert not clients.verify_client_secret(client, setup.created["client_secret"])


def test_the_gate_sees_an_update_and_may_refuse_it_d18() -> None:
    seen: list[RegistrationContext] = []

    class Gate:
        def check_registration(
            self, metadata: ClientMetadata, context: RegistrationContext
        ) -> None:
            seen.append(context)
            if context.client_id is not None and metadata.client_name == "forbidden":
                raise InvalidClientMetadata("not that name", reason="policy")
            if context.remote_addr == "203.0.113.9":
                raise TemporarilyUnavailable("slow down", reason="rate_limited", status=429)

    store = MemoryRegistrationStore()
    service = RegistrationService(
        RegistrationPolicy(registration_endpoint=ENDPOINT), store, clock=FrozenClock(), gate=Gate()
    )
    created = service.register(dict(CONNECTOR))
    client_id, token = created["client_id"], created["registration_access_token"]
    before = store.load(client_id)
    body = {"client_id": client_id, "redirect_uris": ["https://claude.ai/cb"]}
    with pytest.raises(InvalidClientMetadata):
        service.update(client_id, token, body | {"client_name": "forbidden"})
    with pytest.raises(TemporarilyUnavailable):
        service.update(client_id, token, body, remote_addr="203.0.113.9")
    assert store.load(client_id) == before
    service.update(client_id, token, body, remote_addr="198.51.100.1")
    assert [c.client_id for c in seen] == [None, client_id, client_id, client_id]
    assert seen[-1].remote_addr == "198.51.100.1"
    assert not seen[-1].initial_access_token_used


def test_registration_events_carry_no_secret() -> None:
    setup = Setup(REQUESTS["native_loopback"])
    answer = setup.update(
        setup.body(
            redirect_uris=["http://127.0.0.1:6274/oauth/callback"],
            token_endpoint_auth_method="client_secret_post",
        )
    )
    setup.service.delete(setup.client_id, setup.token)
    assert [e.name for e in setup.events] == [
        "client_registered",
        "client_updated",
        "client_deleted",
    ]
    assert {"client_registered", "client_updated", "client_deleted"} <= EVENT_NAMES
    assert all(e.client_id == setup.client_id for e in setup.events)
    updated = setup.events[1]
    assert updated.metadata == {
        "token_endpoint_auth_method": "client_secret_post",
        "secret_issued": True,
    }
    dumped = repr(setup.events)
    for secret in (setup.token, answer["client_secret"]):
        assert secret not in dumped


def test_the_memory_store_updates_only_a_client_that_is_there() -> None:
    setup = Setup()
    stored = setup.stored()
    assert setup.store.update(stored)
    setup.store.delete(setup.client_id)
    assert not setup.store.update(stored)
    assert setup.store.load(setup.client_id) is None
