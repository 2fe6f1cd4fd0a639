from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.core.keys import generate_key
from pyramid_attesto.runtime import get_attesto

ISSUER = "https://id.example"


def _app(settings: dict[str, str], **include: str) -> TestApp:
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto", **include)
    return TestApp(config.make_wsgi_app())


def _key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [generate_key("ES256"), generate_key("RS256")]}))
    return path


def test_jwks_served_from_the_key_file_rfc7517_5(tmp_path: Path) -> None:
    path = _key_file(tmp_path)
    app = _app({"attesto.issuer": ISSUER, "attesto.keystore": str(path)})
    res = app.get("/.well-known/jwks.json")
    assert res.status_int == 200
    assert res.content_type == "application/json"
    assert "max-age=300" in res.headers["Cache-Control"]
    private = json.loads(path.read_text())["keys"]
    assert [k["kid"] for k in res.json["keys"]] == [k["kid"] for k in private]
    for key in res.json["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_well_known_stays_at_the_root_under_a_route_prefix(tmp_path: Path) -> None:
    settings = {"attesto.issuer": ISSUER, "attesto.keystore": str(_key_file(tmp_path))}
    app = _app(settings, route_prefix="/mcp/oauth")
    assert app.get("/.well-known/jwks.json").status_int == 200
    app.get("/mcp/oauth/.well-known/jwks.json", status=404)


def test_directive_keystore_wins_over_the_setting(tmp_path: Path) -> None:
    from pyramid_attesto.core.keys import FileKeystore

    keystore = FileKeystore(_key_file(tmp_path))
    with Configurator(settings={"attesto.issuer": ISSUER}) as config:
        config.include("pyramid_attesto")
        config.set_attesto_keystore(keystore)
    assert get_attesto(config.registry).keystore is keystore


def test_startup_fails_naming_the_setting() -> None:
    # Pyramid wraps errors raised by deferred actions; ours is the cause, naming the key.
    for settings in (
        {"attesto.issuer": ISSUER},
        {"attesto.issuer": ISSUER, "attesto.keystore": "no.such.module:keys"},
    ):
        with pytest.raises(ConfigurationExecutionError, match=r"attesto\.keystore") as info:
            _app(settings)
        assert isinstance(info.value.etype, type)
        assert issubclass(info.value.etype, ConfigurationError)


def test_one_include_protects_the_app_when_attesto_resource_is_set(tmp_path: Path) -> None:
    # RFC 6750 §3.1: a request without a token gets a challenge without ``error``.
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.keystore": str(_key_file(tmp_path)),
        "attesto.resource": "https://api.example/",
        "attesto.scopes_supported": "read:reports",
    }
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto")
        config.add_route("api", "/api/reports")
        config.add_view(lambda r: {}, route_name="api", renderer="json", permission="read:reports")
    app = TestApp(config.make_wsgi_app(), extra_environ={"wsgi.url_scheme": "https"})
    res = app.get("/api/reports", status=401)
    challenge = res.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert "error=" not in challenge
    assert 'scope="read:reports"' in challenge
    app.get("/.well-known/oauth-protected-resource", status=200)


def test_without_attesto_resource_no_security_policy_is_installed(tmp_path: Path) -> None:
    from pyramid.interfaces import ISecurityPolicy

    settings = {"attesto.issuer": ISSUER, "attesto.keystore": str(_key_file(tmp_path))}
    with Configurator(settings=settings) as config:
        config.include("pyramid_attesto")
    assert config.registry.queryUtility(ISecurityPolicy) is None


def _combined_app(settings: dict[str, str], keystore: object, clock: object) -> TestApp:
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.include("pyramid_attesto")
        config.set_attesto_keystore(keystore)
        config.set_attesto_clock(clock)
        config.add_route("api", "/api/reports")
        config.add_view(lambda r: {}, route_name="api", renderer="json", permission="read:reports")
    return TestApp(config.make_wsgi_app(), extra_environ={"wsgi.url_scheme": "https"})


def test_the_resource_server_claims_replays_in_the_shared_sql_storage_rfc9449_11_1(
    tmp_path: Path,
) -> None:
    """One include, two nodes sharing attesto.sqlalchemy.url: a DPoP proof accepted by one
    node is a replay on the other (the claim is in the shared table, not per process)."""
    from joserfc.jwk import ECKey

    from pyramid_attesto.core.clock import FrozenClock
    from pyramid_attesto.core.dpop import build_proof
    from pyramid_attesto.core.keys import FileKeystore
    from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter
    from pyramid_attesto.storage import migrate

    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    migrate.upgrade(url)
    keystore = FileKeystore(_key_file(tmp_path))
    clock = FrozenClock(1_800_000_000)
    settings = {
        "attesto.issuer": ISSUER,
        "attesto.keystore": "(directive)",
        "attesto.resource": "https://api.example/",
        "attesto.scopes_supported": "read:reports",
        "attesto.storage": "sqlalchemy",
        "attesto.sqlalchemy.url": url,
        "attesto.public_url": "https://api.example",
    }
    node_a = _combined_app(settings, keystore, clock)
    node_b = _combined_app(settings, keystore, clock)
    dpop_key = ECKey.generate_key("P-256")
    token = (
        AccessTokenMinter(keystore, issuer=ISSUER, clock=clock)
        .mint(
            AccessTokenClaims(
                subject="alice",
                client_id="c",
                audience="https://api.example/",
                scopes=("read:reports",),
                cnf={"jkt": dpop_key.thumbprint()},
            )
        )
        .token
    )
    proof = build_proof(
        dpop_key, "GET", "https://api.example/api/reports", access_token=token, clock=clock
    )
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    node_a.get("/api/reports", headers=headers, status=200)
    res = node_b.get("/api/reports", headers=headers, status=401)
    assert 'error="invalid_dpop_proof"' in res.headers["WWW-Authenticate"]
