"""The WebTest client's own behaviour, against small WSGI apps: the credentials it sends, the
one ``use_dpop_nonce`` retry (RFC 9449 §8, §9), requests the test spells out itself, and the
WebTest environ of a host's own TestApp (the cookiecutter's transaction)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import webtest

from pyramid_attesto.core.clock import FrozenClock
from pytest_attesto import AttestoClient, Credential, DPoPKey, ProofFactory, TestKeystore
from pytest_attesto._options import resolve_options
from pytest_attesto.client import make_testapp
from pytest_attesto.tokens import TokenFactory

SETTINGS = {"attesto.issuer": "https://id.example", "attesto.resource": "https://api.example"}
OPTIONS = resolve_options(SETTINGS, [], wall_clock=1_800_000_000)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _claims(proof: str) -> dict[str, Any]:
    part = proof.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


class NonceServer:
    """A resource that wants the nonce ``want`` in every proof (RFC 9449 §9), and records
    what it saw. ``status`` is how it answers a missing nonce: 401 with a DPoP challenge
    (resource server) or 400 with a JSON error (token endpoint, §8)."""

    def __init__(self, want: str = "n-1", *, status: int = 401, always: bool = False) -> None:
        self.want = want
        self.status = status
        self.always = always
        self.seen: list[Environ] = []

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self.seen.append(environ)
        proof = environ.get("HTTP_DPOP")
        nonce = _claims(proof).get("nonce") if proof else None
        if proof and (self.always or nonce != self.want):
            body = json.dumps({"error": "use_dpop_nonce"}).encode()
            headers = [("Content-Type", "application/json"), ("DPoP-Nonce", self.want)]
            if self.status == 401:
                headers.append(("WWW-Authenticate", 'DPoP error="use_dpop_nonce"'))
            start_response(f"{self.status} Nope", headers)
            return [body]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]


def client_of(app: Any) -> AttestoClient:
    clock = FrozenClock(OPTIONS.now)
    tokens = TokenFactory(TestKeystore(["ES256"]), clock, OPTIONS)
    proofs = ProofFactory(DPoPKey.generate(), clock, OPTIONS)
    return AttestoClient(make_testapp(app, OPTIONS), tokens=tokens, proofs=proofs)


@pytest.mark.parametrize("status", [401, 400])
def test_a_nonce_challenge_is_answered_once_and_the_nonce_kept_rfc9449_8_9(status: int) -> None:
    server = NonceServer(status=status)
    client = client_of(server).as_subject("alice", dpop=True)
    assert client.get("/api/x").status_int == 200
    assert len(server.seen) == 2
    assert client.dpop_nonce == "n-1"
    first, second = (_claims(e["HTTP_DPOP"]) for e in server.seen)
    assert "nonce" not in first
    assert second["nonce"] == "n-1"
    assert first["jti"] != second["jti"]  # a fresh proof, not a replay
    client.get("/api/x")
    assert len(server.seen) == 3  # the kept nonce is sent at once


def test_the_retry_happens_once_only() -> None:
    server = NonceServer(always=True)
    client = client_of(server).as_subject("alice", dpop=True)
    response = client.get("/api/x", status=401)
    assert len(server.seen) == 2
    assert response.headers["DPoP-Nonce"] == "n-1"


def test_an_unexpected_status_raises_as_webtest_does() -> None:
    client = client_of(NonceServer(always=True)).as_subject("alice", dpop=True)
    with pytest.raises(webtest.AppError, match="401"):
        client.get("/api/x")
    assert client.get("/api/x", expect_errors=True).status_int == 401


def test_headers_the_test_sets_are_sent_as_they_are_and_never_retried() -> None:
    server = NonceServer()
    client = client_of(server).as_subject("alice", dpop=True)
    proof = client.proofs("GET", "/api/x")
    client.get("/api/x", headers={"DPoP": proof, "Authorization": "DPoP t"}, status=401)
    assert len(server.seen) == 1
    assert server.seen[0]["HTTP_DPOP"] == proof
    assert server.seen[0]["HTTP_AUTHORIZATION"] == "DPoP t"


def test_bearer_and_anonymous_clients() -> None:
    server = NonceServer()
    base = client_of(server)
    bearer = base.as_subject("alice", scopes=["read"])
    bearer.get("/api/x")
    assert server.seen[-1]["HTTP_AUTHORIZATION"] == f"Bearer {bearer.token}"
    assert "HTTP_DPOP" not in server.seen[-1]
    base.get("/api/x")
    assert "HTTP_AUTHORIZATION" not in server.seen[-1]
    assert base.anonymous().token is None
    with pytest.raises(ValueError, match="needs a DPoP client"):
        bearer.get("/api/x", broken="wrong_htu")
    with pytest.raises(ValueError, match="needs a DPoP client"):
        base.get("/api/x", broken="wrong_htu")


def test_a_proof_names_the_base_url_and_the_path_without_query_rfc9449_4_2() -> None:
    server = NonceServer()
    client = client_of(server).as_subject("alice", dpop=True)
    client.post_json("/api/x?page=2", {"a": 1}, headers={"X-Other": "1"})
    claims = _claims(server.seen[-1]["HTTP_DPOP"])
    assert (claims["htm"], claims["htu"]) == ("POST", "https://api.example/api/x")
    assert server.seen[-1]["HTTP_X_OTHER"] == "1"
    assert server.seen[-1]["wsgi.url_scheme"] == "https"
    assert server.seen[-1]["HTTP_HOST"] == "api.example"


def test_a_token_request_proof_has_no_ath_and_keeps_the_basic_header_rfc9449_5() -> None:
    server = NonceServer(status=400)
    client = client_of(server)
    key = DPoPKey.generate()
    client.post("/oauth/token", {"grant_type": "x"}, headers={"Authorization": "Basic a"},
                dpop_key=key)  # fmt: skip
    assert len(server.seen) == 2
    assert server.seen[-1]["HTTP_AUTHORIZATION"] == "Basic a"
    assert "ath" not in _claims(server.seen[-1]["HTTP_DPOP"])


def test_a_host_testapp_keeps_its_environ_and_cookies() -> None:
    server = NonceServer()
    host = webtest.TestApp(server, extra_environ={"HTTP_HOST": "example.com", "tm.active": True})
    client = client_of(host)
    assert client.testapp.cookiejar is host.cookiejar
    client.get("/")
    environ = server.seen[-1]
    assert (environ["HTTP_HOST"], environ["tm.active"]) == ("example.com", True)
    assert environ["wsgi.url_scheme"] == "https"


def test_attesto_app_must_be_a_wsgi_app() -> None:
    with pytest.raises(TypeError, match=r"WSGI app or a webtest\.TestApp"):
        make_testapp(object(), OPTIONS)


def test_credentials_are_checked() -> None:
    with pytest.raises(ValueError, match="needs the DPoP key"):
        Credential("t", "DPoP")
    with pytest.raises(ValueError, match="Bearer' or 'DPoP"):
        Credential("t", "MAC")  # type: ignore[arg-type]
    assert "secret-token" not in repr(Credential("secret-token", "Bearer"))


def test_as_client_is_a_client_principal() -> None:
    client = client_of(NonceServer()).as_client("job", scopes=["read"])
    claims = _claims(client.token or "")
    assert (claims["sub"], claims["client_id"], claims["principal_kind"]) == (
        "job",
        "job",
        "client",
    )
