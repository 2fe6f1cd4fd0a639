"""End to end: the jwt-bearer grant with ID-JAG assertions (MCP Enterprise-Managed
Authorization; draft-ietf-oauth-identity-assertion-authz-grant; RFC 7523) at the token
endpoint: trusted issuers from settings, the subject resolver, no refresh token, and the
refusals with their exact errors. Assertions are signed with ``cryptography`` directly."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asrv_support import HTTPS, KEYSTORE, DPoPKey, HostClients, as_app, basic, verify_access_token
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.jwt_bearer import GRANT_TYPE, ID_JAG_TYP, VerifiedAssertion
from pyramid_attesto.core.outbound import FetchedDocument
from pyramid_attesto.core.secret import constant_time_equals, hash_secret
from pyramid_attesto.server import get_server
from pyramid_attesto.storage import metadata

ISSUER = "https://id.example"
IDP = "https://idp.example"
MCP = "https://mcp.example/mcp"
TOKEN = "/oauth/token"
SECRET = "agent-secret-0123456789"
IDP_KEY = ec.generate_private_key(ec.SECP256R1())
ATTACKER = ec.generate_private_key(ec.SECP256R1())
AGENT = Client(
    client_id="agent",
    grant_types=("client_credentials", GRANT_TYPE),
    scope="read write",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    return {"kty": "EC", "crv": "P-256", "x": _b64(x), "y": _b64(y), "kid": kid}


def _sign(header: dict[str, Any], claims: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _issuers(**spec: Any) -> str:
    return json.dumps({IDP: {"jwks": {"keys": [_jwk(IDP_KEY, "idp-1")]}, **spec}})


class Clients(HostClients):
    def load_client(self, client_id: str) -> Client | None:
        return AGENT if client_id == "agent" else super().load_client(client_id)

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        if client.client_id == "agent":
            return constant_time_equals(hash_secret(secret), hash_secret(SECRET))
        return super().verify_client_secret(client, secret)


class Directory:
    def resolve_subject(self, assertion: VerifiedAssertion, client: Client) -> str | None:
        return {"00u-alice": "alice"}.get(assertion.subject)


def _app(issuers: str | None = None, **directives: Any) -> TestApp:
    return as_app(
        {"attesto.jwt_bearer.issuers": issuers or _issuers(), "attesto.resources": MCP},
        set_attesto_client_store=Clients(),
        set_attesto_assertion_subject_resolver=Directory(),
        **directives,
    )


def _id_jag(key: ec.EllipticCurvePrivateKey = IDP_KEY, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": IDP,
        "sub": "00u-alice",
        "aud": ISSUER,
        "client_id": "agent",
        "jti": secrets.token_urlsafe(12),
        "iat": now,
        "exp": now + 300,
        "resource": MCP,
        "scope": "read write",
    }
    header = {"alg": "ES256", "typ": changes.pop("typ", ID_JAG_TYP), "kid": "idp-1"}
    claims.update(changes)
    return _sign(header, {k: v for k, v in claims.items() if v is not None}, key)


def _grant(app: TestApp, assertion: str, status: int = 200, **params: str) -> Any:
    form = {"grant_type": GRANT_TYPE, "assertion": assertion, **params}
    return app.post(TOKEN, form, headers=basic("agent", SECRET), status=status)


def test_metadata_lists_jwt_bearer_when_issuers_are_trusted_rfc8414_2() -> None:
    doc = _app().get("/.well-known/oauth-authorization-server").json
    assert GRANT_TYPE in doc["grant_types_supported"]
    assert (
        GRANT_TYPE
        not in as_app().get("/.well-known/oauth-authorization-server").json["grant_types_supported"]
    )


def test_an_id_jag_yields_an_access_token_without_refresh_token() -> None:
    app = _app()
    res = _grant(app, _id_jag(), scope="read")
    body = res.json
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read"
    assert "refresh_token" not in body
    assert "issued_token_type" not in body
    token = verify_access_token(app, body["access_token"], audience=MCP)
    assert (token.subject, token.client_id, token.principal_kind) == ("alice", "agent", "user")


def test_an_id_jag_with_cnf_jkt_yields_a_dpop_token_d9() -> None:
    app = _app()
    key = DPoPKey()
    res = app.post(
        TOKEN,
        {"grant_type": GRANT_TYPE, "assertion": _id_jag(cnf={"jkt": key.jkt})},
        headers={**basic("agent", SECRET), "DPoP": key.proof()},
        status=200,
    )
    assert res.json["token_type"] == "DPoP"
    assert verify_access_token(app, res.json["access_token"], audience=MCP).cnf == {"jkt": key.jkt}
    no_proof = _grant(app, _id_jag(cnf={"jkt": key.jkt}), status=400)
    assert no_proof.json["error"] == "invalid_dpop_proof"


def test_a_replayed_id_jag_is_invalid_grant_rfc7523_3_7() -> None:
    app = _app()
    assertion = _id_jag()
    _grant(app, assertion)
    assert _grant(app, assertion, status=400).json["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "https://other-as.example"},
        {"client_id": "someone-else"},
        {"typ": "JWT"},
        {"iss": "https://evil-idp.example"},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 800},
        {"sub": "00u-nobody"},
    ],
)
def test_refused_assertions_are_invalid_grant_rfc7523_3_1(changes: dict[str, Any]) -> None:
    res = _grant(_app(), _id_jag(**changes), status=400)
    assert res.json["error"] == "invalid_grant"
    assert res.headers["Cache-Control"] == "no-store"


def test_a_bad_signature_is_invalid_grant_rfc7523_3_9() -> None:
    assert _grant(_app(), _id_jag(ATTACKER), status=400).json["error"] == "invalid_grant"


def test_a_resource_outside_the_ceiling_is_invalid_target_rfc8707_2() -> None:
    res = _grant(_app(), _id_jag(), status=400, resource=ISSUER)
    assert res.json["error"] == "invalid_target"


def test_a_scope_above_the_assertion_is_invalid_scope() -> None:
    res = _grant(_app(), _id_jag(scope="read"), status=400, scope="read write")
    assert res.json["error"] == "invalid_scope"


def test_a_missing_assertion_is_invalid_request_rfc6749_5_2() -> None:
    res = _app().post(TOKEN, {"grant_type": GRANT_TYPE}, headers=basic("agent", SECRET), status=400)
    assert res.json["error"] == "invalid_request"


class JWKS:
    def __init__(self) -> None:
        self.fetched: list[str] = []

    def fetch(self, url: str) -> FetchedDocument:
        self.fetched.append(url)
        body = json.dumps({"keys": [_jwk(IDP_KEY, "idp-1")]}).encode()
        return FetchedDocument(url=url, body=body, headers={"cache-control": "max-age=600"})


def test_issuer_keys_from_a_jwks_uri_are_fetched_through_the_fetcher_and_cached() -> None:
    fetcher = JWKS()
    issuers = json.dumps({IDP: {"jwks_uri": "https://idp.example/jwks"}})
    app = _app(issuers, set_attesto_fetcher=fetcher)
    _grant(app, _id_jag())
    _grant(app, _id_jag())
    assert fetcher.fetched == ["https://idp.example/jwks"]


@pytest.mark.parametrize(
    ("issuers", "match"),
    [
        ("{not json", "jwt_bearer.issuers"),
        (json.dumps({IDP: {"jwks_uri": "http://idp.example/jwks"}}), "https"),
        (json.dumps({IDP: {"jwks_uri": "https://a/j", "jwks": {"keys": []}}}), "exactly one"),
        (json.dumps({IDP: {"jwks_uri": "https://a/j", "profiles": ["saml"]}}), "profiles"),
        ("/nonexistent/issuers.json", "readable"),
    ],
)
def test_bad_issuer_settings_are_configuration_errors(issuers: str, match: str) -> None:
    with pytest.raises(ConfigurationExecutionError, match=match):
        _app(issuers)


def test_trusted_issuers_need_a_subject_resolver() -> None:
    with pytest.raises(ConfigurationExecutionError, match="assertion_subject_resolver"):
        as_app({"attesto.jwt_bearer.issuers": _issuers()}, set_attesto_client_store=Clients())


def test_issuers_can_come_from_a_file(tmp_path: Any) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(_issuers())
    _grant(_app(str(path)), _id_jag())


# -- on the SQL stores under pyramid_tm (DESIGN.md rules 2 and 3) ---------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestApp]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'attesto.db'}"
    else:
        schemas = request.getfixturevalue("postgresql_schemas")
        url = schemas().render_as_string(hide_password=False)
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.keystore": "(directive)",
        "attesto.sqlalchemy.url": url,
        "attesto.scopes_supported": "read write",
        "attesto.resources": MCP,
        "attesto.jwt_bearer.issuers": _issuers(),
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_keystore(KEYSTORE)
        config.set_attesto_client_store(Clients())
        config.set_attesto_assertion_subject_resolver(Directory())
    engine = get_server(config.registry).stores.engine
    metadata.create_all(engine)
    yield TestApp(config.make_wsgi_app(), extra_environ=dict(HTTPS))
    engine.dispose()


def test_the_jti_is_single_use_in_the_database_rule_2(sql_app: TestApp) -> None:
    assertion = _id_jag()
    _grant(sql_app, assertion)
    assert _grant(sql_app, assertion, status=400).json["error"] == "invalid_grant"


def test_a_used_jti_commits_with_an_error_response_rule_3(sql_app: TestApp) -> None:
    """The subject is resolved after the jti is used: an unknown subject is an error
    response, and the jti stays used (the replay record commits with it)."""
    assertion = _id_jag(sub="00u-nobody")
    first = _grant(sql_app, assertion, status=400)
    assert first.headers["x-tm"] == "commit"
    assert _grant(sql_app, assertion, status=400).json["error"] == "invalid_grant"
