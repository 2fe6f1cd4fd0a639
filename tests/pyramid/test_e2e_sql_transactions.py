"""End to end on the SQL stores under pyramid_tm (DESIGN.md rules 2 and 3): a token request is
one transaction, and what must persist with an error response (a consumed code, a revoked
family, a replay record) commits with it. SQLite file and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asrv_support import HTTPS, ISSUER, KEYSTORE, DPoPKey, HostClients, HostPrincipals, basic
from pyramid.config import Configurator
from webtest import TestApp

from pyramid_attesto.core.stores import AuthorizationCode
from pyramid_attesto.server import get_server
from pyramid_attesto.storage import SqlStorage, metadata

TOKEN = "/oauth/token"
VERIFIER = "k" * 50


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestApp]:
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
        "attesto.grant_types_supported": "authorization_code refresh_token client_credentials",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_keystore(KEYSTORE)
        config.set_attesto_client_store(HostClients())
        config.set_attesto_principal_store(HostPrincipals())
    engine = get_server(config.registry).stores.engine
    metadata.create_all(engine)
    test_app = TestApp(config.make_wsgi_app(), extra_environ=dict(HTTPS))
    yield test_app
    engine.dispose()


def _engine(app: TestApp) -> Any:
    return get_server(app.app.registry).stores.engine


def _sql(app: TestApp) -> Any:
    engine = _engine(app)
    return SqlStorage(engine).for_engine(engine)


def _code(app: TestApp) -> str:
    code = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    _sql(app).codes.put(
        code,
        AuthorizationCode(
            client_id="pub",
            subject="alice",
            redirect_uri="http://127.0.0.1/cb",
            scope=("read",),
            expires_at=int(time.time()) + 60,
            code_challenge=challenge.rstrip(b"=").decode(),
        ),
    )
    return code


def _redeem(code: str, verifier: str = VERIFIER) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": verifier,
        "client_id": "pub",
    }


def test_code_flow_and_reuse_revocation_commit_rule3(app: TestApp) -> None:
    code = _code(app)
    first = app.post(TOKEN, _redeem(code), status=200).json
    again = app.post(TOKEN, _redeem(code), status=400)
    assert again.headers["x-tm"] == "commit"
    # The family revocation committed with the error response.
    assert _sql(app).refresh_tokens.get(first["refresh_token"]) is None
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    res = app.post(TOKEN, {**refresh, "client_id": "pub"}, status=400)
    assert res.json["error"] == "invalid_grant"


def test_failed_pkce_burns_the_code_rule3(app: TestApp) -> None:
    code = _code(app)
    app.post(TOKEN, _redeem(code, "w" * 50), status=400)
    res = app.post(TOKEN, _redeem(code), status=400)
    assert res.json["error"] == "invalid_grant"


def test_refresh_rotation_persists_rfc9700_4_14_2(app: TestApp) -> None:
    first = app.post(TOKEN, _redeem(_code(app)), status=200).json
    refresh = {"grant_type": "refresh_token", "client_id": "pub"}
    second = app.post(TOKEN, {**refresh, "refresh_token": first["refresh_token"]}).json
    third = app.post(TOKEN, {**refresh, "refresh_token": second["refresh_token"]}).json
    assert third["access_token"]
    app.post(TOKEN, {**refresh, "refresh_token": first["refresh_token"]}, status=400)
    app.post(TOKEN, {**refresh, "refresh_token": third["refresh_token"]}, status=400)


def test_dpop_replay_record_commits_rfc9449_11_1(app: TestApp) -> None:
    proof = DPoPKey().proof()
    cc = {"grant_type": "client_credentials"}
    app.post(TOKEN, cc, headers={**basic("svc"), "DPoP": proof}, status=200)
    res = app.post(TOKEN, cc, headers={**basic("svc"), "DPoP": proof}, status=400)
    assert res.json["error"] == "invalid_dpop_proof"


def test_revocation_persists_rfc7009_2_1(app: TestApp) -> None:
    tokens = app.post(TOKEN, _redeem(_code(app)), status=200).json
    app.post("/oauth/revoke", {"token": tokens["refresh_token"], "client_id": "pub"}, status=200)
    assert _sql(app).refresh_tokens.get(tokens["refresh_token"]) is None


def test_database_failure_is_a_clean_503_rule3(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.keystore": "(directive)",
        # The tables were never created: every store operation fails.
        "attesto.sqlalchemy.url": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_keystore(KEYSTORE)
        config.set_attesto_client_store(HostClients())
    app = TestApp(config.make_wsgi_app(), extra_environ=dict(HTTPS))
    proof = DPoPKey().proof()
    res = app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers={**basic("svc"), "DPoP": proof},
        status=503,
    )
    assert res.json == {
        "error": "temporarily_unavailable",
        "error_description": "the service is temporarily unavailable",
    }
    assert res.headers["Cache-Control"] == "no-store"
    assert "x-tm" not in res.headers
    assert "Traceback" not in res.text
    assert "database failure" in caplog.text
    get_server(config.registry).stores.engine.dispose()
