"""End to end: the RFC 7592 §2.2 client update (``PUT`` on the client configuration
endpoint) on a real app with open registration and the memory registration store: a full
replacement that the authorization endpoint and the token endpoint then honour, and every
refusal with its exact error and the stored registration unchanged (read back over HTTP).
The SQL store is covered in test_e2e_registration_sql.py."""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import urlsplit

import pytest
from asrv_support import Consent, as_app, code_of, events, pkce_authorize
from webtest import TestApp

REGISTER = "/oauth/register"
VERIFIER = "u" * 64
ENABLED = {
    "attesto.registration.enabled": "true",
    "attesto.registration_store": "memory",
    "attesto.registration.default_scope": "read",
}
CALLBACK = "https://app.example/oauth/callback"
NEW_CALLBACK = "https://app.example/oauth/callback-v2"
CONNECTOR = {
    "client_name": "Connector",
    "redirect_uris": [CALLBACK],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_post",
    "scope": "read write",
    "contacts": ["ops@app.example"],
}


def _app(**settings: str) -> TestApp:
    return as_app({**ENABLED, **settings}, set_attesto_consent_policy=Consent())


class Registered:
    """A client registered over HTTP, with what it needs to manage its registration."""

    def __init__(self, app: TestApp, body: dict[str, Any] | None = None) -> None:
        self.app = app
        res = app.post(
            REGISTER, json.dumps(body or CONNECTOR), content_type="application/json", status=201
        )
        self.info: dict[str, Any] = res.json
        self.client_id: str = self.info["client_id"]
        self.uri = urlsplit(self.info["registration_client_uri"]).path
        self.auth = {"Authorization": f"Bearer {self.info['registration_access_token']}"}

    def put(self, body: object, status: int = 200, **headers: str) -> Any:
        return self.app.put(
            self.uri,
            json.dumps(body),
            headers={**self.auth, **headers},
            content_type="application/json",
            status=status,
        )

    def read(self) -> dict[str, Any]:
        body: dict[str, Any] = self.app.get(self.uri, headers=self.auth, status=200).json
        return body

    def body(self, **members: Any) -> dict[str, Any]:
        return {"client_id": self.client_id, **members}


def _authorize(app: TestApp, client_id: str, redirect_uri: str, status: int = 302) -> Any:
    return pkce_authorize(app, client_id, redirect_uri, VERIFIER, status)


def _code(response: Any) -> str:
    return code_of(response)


def test_a_full_replacement_is_served_and_enforced_rfc7592_2_2() -> None:
    """RFC 7592 §2.2: the new redirect URI works and the old one is refused; the member left
    out (client_name, contacts) is gone; 200 with the client information (RFC 7592 §3)."""
    app = _app()
    client = Registered(app)
    seen = events(app)
    res = client.put(
        client.body(
            redirect_uris=[NEW_CALLBACK],
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="client_secret_post",
            scope="read",
        )
    )
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" not in res.headers
    info = res.json
    assert info["client_id"] == client.client_id
    assert info["registration_client_uri"] == client.info["registration_client_uri"]
    assert info["registration_access_token"] == client.info["registration_access_token"]
    assert info["client_id_issued_at"] == client.info["client_id_issued_at"]
    assert info["redirect_uris"] == [NEW_CALLBACK]
    assert info["scope"] == "read"
    assert "client_name" not in info
    assert "contacts" not in info
    assert "client_secret" not in info
    read = client.read()
    assert read == info
    assert [e.name for e in seen] == ["client_updated"]
    assert client.info["client_secret"] not in repr(seen)
    # The authorization endpoint uses the new registration at once.
    old = _authorize(app, client.client_id, CALLBACK, status=400)
    assert "Location" not in old.headers
    code = _code(_authorize(app, client.client_id, NEW_CALLBACK))
    tokens = app.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": NEW_CALLBACK,
            "code_verifier": VERIFIER,
            "client_id": client.client_id,
            "client_secret": client.info["client_secret"],  # kept by the update
        },
        status=200,
    ).json
    assert tokens["scope"] == "read"


def test_a_public_client_that_becomes_confidential_gets_a_secret_once_rfc7592_2_2() -> None:
    """RFC 7592 §2.2: the server MAY include a new client secret; it does when the client
    moves from ``none`` to a secret method, and the token endpoint then requires it."""
    app = _app()
    public = {
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    client = Registered(app, public)
    assert "client_secret" not in client.info
    refresh = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": client.client_id}
    assert app.post("/oauth/token", refresh, status=400).json["error"] == "invalid_grant"
    info = client.put(
        client.body(**{**public, "token_endpoint_auth_method": "client_secret_post"})
    ).json
    secret = info["client_secret"]
    assert info["client_secret_expires_at"] == 0
    assert "client_secret" not in client.read()
    denied = app.post("/oauth/token", refresh, status=401)
    assert denied.json["error"] == "invalid_client"
    res = app.post("/oauth/token", {**refresh, "client_secret": secret}, status=400)
    assert res.json["error"] == "invalid_grant"  # authenticated; the refresh token is junk


@pytest.mark.parametrize(
    ("client_id", "reason"),
    [(None, "missing"), ("someone-else", "another client's"), (7, "not a string")],
)
def test_the_body_must_carry_the_clients_own_id_rfc7592_2_2(client_id: object, reason: str) -> None:
    """RFC 7592 §2.2: the client MUST include its client_id, equal to the issued one."""
    client = Registered(_app())
    body: dict[str, Any] = {"redirect_uris": [NEW_CALLBACK]}
    if client_id is not None:
        body["client_id"] = client_id
    res = client.put(body, status=400)
    assert res.json["error"] == "invalid_request", reason
    assert res.headers["Cache-Control"] == "no-store"
    assert client.read()["redirect_uris"] == [CALLBACK]


def test_a_client_secret_other_than_the_current_one_is_refused_rfc7592_2_2() -> None:
    """RFC 7592 §2.2: a client_secret in the body MUST match the current secret; the client
    cannot set its own."""
    client = Registered(_app())
    res = client.put(
        client.body(redirect_uris=[NEW_CALLBACK], client_secret="my-own-chosen-secret"),
        status=400,
    )
    assert res.json["error"] == "invalid_request"
    assert "my-own-chosen-secret" not in res.text
    assert client.read()["redirect_uris"] == [CALLBACK]
    ok = client.put(
        client.body(
            redirect_uris=[NEW_CALLBACK],
            token_endpoint_auth_method="client_secret_post",
            client_secret=client.info["client_secret"],
        )
    )
    assert ok.json["redirect_uris"] == [NEW_CALLBACK]


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
    """RFC 7592 §2.2: the update request MUST NOT include these fields (invalid_request)."""
    client = Registered(_app())
    res = client.put(
        {**client.body(redirect_uris=[NEW_CALLBACK]), member: client.info[member]}, status=400
    )
    assert res.json["error"] == "invalid_request"
    assert member in res.json["error_description"]
    assert client.read()["redirect_uris"] == [CALLBACK]


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example/cb#fragment"]}, "invalid_redirect_uri"),
        ({"client_name": "no redirect uri"}, "invalid_redirect_uri"),
        ({"redirect_uris": [NEW_CALLBACK], "grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"redirect_uris": [NEW_CALLBACK], "jwks_uri": "http://x"}, "invalid_client_metadata"),
        (
            {"redirect_uris": [NEW_CALLBACK], "software_statement": "a.b.c"},
            "unapproved_software_statement",
        ),
    ],
)
def test_invalid_metadata_leave_the_registration_unchanged_rfc7591_3_2_2(
    members: dict[str, Any], error: str
) -> None:
    """RFC 7592 §2.2: an invalid field is an RFC 7591 §3.2.2 error; nothing is stored."""
    client = Registered(_app())
    before = client.read()
    res = client.put(client.body(**members), status=400)
    assert res.json["error"] == error
    assert client.read() == before


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Bearer "])
def test_update_needs_the_registration_access_token_rfc7592_2_2(header: str | None) -> None:
    """RFC 7592 §2.2 / RFC 6750 §3.1: a missing or invalid token is 401 ``invalid_token``
    with a Bearer challenge."""
    client = Registered(_app())
    headers = {"Authorization": header} if header else {}
    res = client.app.put(
        client.uri,
        json.dumps(client.body(redirect_uris=[NEW_CALLBACK])),
        headers=headers,
        content_type="application/json",
        status=400 if header == "Bearer " else 401,
    )
    if res.status_int == 401:
        assert res.json["error"] == "invalid_token"
        assert res.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    else:
        assert res.json["error"] == "invalid_request"  # not a Bearer header at all
    assert client.read()["redirect_uris"] == [CALLBACK]


def test_a_token_of_another_client_is_401_rfc7592_2_2() -> None:
    app = _app()
    victim, attacker = Registered(app), Registered(app)
    res = victim.put(
        victim.body(redirect_uris=["https://evil.example/cb"]),
        status=401,
        Authorization=attacker.auth["Authorization"],
    )
    assert res.json["error"] == "invalid_token"
    assert victim.read()["redirect_uris"] == [CALLBACK]


def test_unknown_host_and_metadata_document_clients_are_401_rfc7592_2_2() -> None:
    """RFC 7592 §2.2: a client that does not exist here is 401, like a wrong token (no
    oracle). Only registered clients have a configuration endpoint: the host's own clients
    and metadata-document clients (a URL-shaped client_id) are unknown to it."""
    app = _app(**{"attesto.client_id_metadata.enabled": "true"})
    client = Registered(app)
    doc = "https%3A%2F%2Fconnector.example%2Fclient.json"
    for client_id in ("nobody", "web", "pub", doc, "https://connector.example/c.json", "x" * 300):
        res = app.put(
            f"{REGISTER}/{client_id}",
            json.dumps({"client_id": client_id, "redirect_uris": [NEW_CALLBACK]}),
            headers=client.auth,
            content_type="application/json",
            status=401,
        )
        assert res.json["error"] == "invalid_token"
        assert res.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_bodies_that_are_not_a_json_object_rfc7591_3_2_2() -> None:
    """The registration endpoint's body rules: JSON only (invalid_request otherwise), at
    most ``attesto.max_body_bytes``, syntax and depth errors are invalid_client_metadata."""
    app = _app(**{"attesto.max_body_bytes": "4096"})
    client = Registered(app)
    put = {"headers": client.auth, "status": 400}
    res = app.put(client.uri, {"client_id": client.client_id}, **put)
    assert res.json["error"] == "invalid_request"
    for raw, error in (
        (b"{nope", "invalid_client_metadata"),
        (b"[" * 100 + b"]" * 100, "invalid_client_metadata"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "invalid_client_metadata"),
        (b"[1, 2]", "invalid_client_metadata"),
        (b"\xff\xfe", "invalid_client_metadata"),
        (b'{"client_name": "' + b"x" * 5000 + b'"}', "invalid_request"),
    ):
        res = app.put(client.uri, raw, content_type="application/json", **put)
        assert res.json["error"] == error, raw[:20]
    assert client.read()["redirect_uris"] == [CALLBACK]


def test_plain_http_is_refused_d23() -> None:
    client = Registered(_app())
    res = client.app.put(
        client.uri,
        json.dumps(client.body(redirect_uris=[NEW_CALLBACK])),
        headers=client.auth,
        content_type="application/json",
        extra_environ={"wsgi.url_scheme": "http"},
        status=400,
    )
    assert res.json["error"] == "invalid_request"


def test_hostile_update_bodies_are_never_a_server_error_rfc7591_3_2_2() -> None:
    """Seeded junk in every member of an authenticated update: a protocol error or a
    success, never a 500, and a refusal stores nothing."""
    app = _app()
    client = Registered(app)
    rnd = random.Random(7592)
    members = (
        "client_id",
        "client_secret",
        "redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "response_types",
        "application_type",
        "scope",
        "client_name",
        "contacts",
        "jwks",
        "jwks_uri",
        "logo_uri",
        "dpop_bound_access_tokens",
        "registration_access_token",
    )
    values: tuple[object, ...] = (
        None,
        "",
        "\ud800",
        "\x00",
        "é" * 300,
        42,
        1e308,
        True,
        [],
        ["https://app.example/cb"],
        ["\ud800"],
        [None, 1],
        {"keys": [{"kty": "EC"}]},
        {"keys": "x"},
        client.client_id,
        client.info["client_secret"],
        "https://app.example/cb",
        "http://127.0.0.1/cb",
        "none",
        "private_key_jwt",
    )
    for _ in range(300):
        body = {name: rnd.choice(values) for name in rnd.sample(members, rnd.randint(0, 8))}
        if rnd.random() < 0.7:
            body["client_id"] = client.client_id
        before = client.read()
        raw = json.dumps(body).encode("utf-8", "surrogatepass")
        res = app.put(
            client.uri,
            raw,
            headers=client.auth,
            content_type="application/json",
            expect_errors=True,
        )
        assert res.status_int in (200, 400), (body, res.status, res.text[:300])
        assert "Traceback" not in res.text
        if res.status_int == 400:
            assert client.read() == before
