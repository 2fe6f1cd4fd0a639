"""``attesto check CONFIG.ini``: every insecure or inconsistent choice is reported with its
fix; the demo's ini passes."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from pyramid_attesto.check import check_settings, server_workers
from pyramid_attesto.cli import main
from pyramid_attesto.demo import DEMO_INI

INSECURE = """\
[app:main]
use = call:pyramid_attesto.demo:main
attesto.issuer = http://auth.example.com
attesto.require_https = false
attesto.keystore = generate
attesto.scopes_supported = openid read
attesto.resource = https://api.example.com/
attesto.dpop.nonce = hmac
attesto.dpop.resource_nonce = true
attesto.refresh_grace_ttl = 300
attesto.trusted_proxies = 0.0.0.0/0
attesto.access_token_ttl = 86400
attesto.bearer_methods = header body

[server:main]
use = egg:gunicorn#main
workers = 4
"""

EXPECTED = {
    "http-issuer",  # http issuer off loopback
    "require-https-off",
    "generated-key",  # D19: a per-process key
    "memory-stores",  # memory stores with several processes
    "par-store",  # a PAR store that is not shared
    "replay-store",  # DPoP replay store not shared
    "nonce-secret",  # D19: a per-process DPoP nonce secret
    "successor-secret",  # D19/D24: a grace window without a successor secret
    "refresh-reuse",  # a long grace window weakens reuse detection
    "trusted-proxies",
    "access-token-ttl",
    "bearer-body",
}


def test_an_insecure_ini_reports_each_problem_with_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = tmp_path / "insecure.ini"
    ini.write_text(INSECURE)
    assert main(["check", str(ini)]) == 1
    out = capsys.readouterr().out
    for code in EXPECTED:
        assert f" {code}: " in out, code
    assert out.count("fix: ") >= len(EXPECTED)
    assert "error(s)" in out


def test_each_finding_is_named_and_errors_are_errors() -> None:
    settings = {
        "attesto.issuer": "http://auth.example.com",
        "attesto.keystore": "generate",
        "attesto.require_https": "false",
    }
    findings = {f.code: f for f in check_settings(settings, workers=None)}
    assert findings["http-issuer"].severity == "error"
    assert findings["require-https-off"].severity == "error"
    assert findings["generated-key"].severity == "error"
    assert findings["memory-stores"].severity == "error"


def test_one_process_makes_per_process_choices_warnings() -> None:
    settings = {
        "attesto.issuer": "https://auth.example.com",
        "attesto.keystore": "generate",
    }
    findings = {f.code: f for f in check_settings(settings, workers=1)}
    assert findings["generated-key"].severity == "warning"
    assert findings["memory-stores"].severity == "warning"
    assert findings["par-store"].severity == "warning"


def test_missing_and_unreadable_keys_are_reported(tmp_path: Path) -> None:
    missing = check_settings({"attesto.issuer": "https://a.example"}, workers=1)
    assert any(f.code == "missing-keys" for f in missing)
    gone = check_settings(
        {"attesto.issuer": "https://a.example", "attesto.keystore": str(tmp_path / "k.json")},
        workers=1,
    )
    assert any(f.code == "missing-keys" and "does not exist" in f.message for f in gone)
    path = tmp_path / "keys.json"
    main(["keys", "generate", str(path), "--alg", "ES256"])
    os.chmod(path, 0o644)
    found = {
        f.code
        for f in check_settings(
            {
                "attesto.issuer": "https://a.example",
                "attesto.keystore": str(path),
                "attesto.scopes_supported": "openid",
            },
            workers=1,
        )
    }
    assert {"key-file-mode", "no-rs256-key"} <= found


def test_short_secrets_and_unknown_settings_are_errors() -> None:
    findings = check_settings(
        {
            "attesto.issuer": "https://a.example",
            "attesto.keystore": "generate",
            "attesto.dpop.nonce_secret": "short",
            "attesto.refresh_grace_ttl": "5",
            "attesto.refresh_successor_secret": "short",
            "attesto.isuer": "typo",
        },
        workers=1,
    )
    codes = [(f.code, f.setting) for f in findings if f.severity == "error"]
    assert ("nonce-secret", "attesto.dpop.nonce_secret") in codes
    assert ("successor-secret", "attesto.refresh_successor_secret") in codes
    assert ("invalid", "attesto.isuer") in codes


def test_server_section_decides_the_process_count(tmp_path: Path) -> None:
    ini = tmp_path / "a.ini"
    ini.write_text("[server:main]\nuse = egg:waitress#main\n")
    assert server_workers(ini) == 1
    ini.write_text("[server:main]\nuse = egg:gunicorn#main\nworkers = 3\n")
    assert server_workers(ini) == 3
    ini.write_text("[app:main]\n")
    assert server_workers(ini) is None


def test_the_demo_ini_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["keys", "generate", "var/demo-keys.json"])  # what the demo does on first start
    capsys.readouterr()
    assert main(["check", str(DEMO_INI)]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out
    assert "ERROR" not in out


def test_an_unreadable_ini_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.ini")]) == 2
    ini = tmp_path / "bad.ini"
    ini.write_text(textwrap.dedent("[server:main]\nuse = egg:waitress#main\n"))
    assert main(["check", str(ini)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_registered_clients_in_memory_with_several_processes_are_an_error() -> None:
    settings = {
        "attesto.issuer": "https://auth.example.com",
        "attesto.keystore": "generate",
        "attesto.sqlalchemy.url": "postgresql+psycopg://db/attesto",
        "attesto.registration.enabled": "true",
        "attesto.registration_store": "memory",
    }
    findings = {f.code: f for f in check_settings(settings, workers=4)}
    assert findings["registration-store"].severity == "error"
    settings["attesto.registration_store"] = "sqlalchemy"
    assert "registration-store" not in {f.code for f in check_settings(settings, workers=4)}


def test_the_resource_server_shares_the_attesto_database_when_unset() -> None:
    """With attesto.sqlalchemy.url and no attesto.replay_store, the resource server claims
    replays in the attesto database: nothing to report."""
    settings = {
        "attesto.issuer": "https://auth.example.com",
        "attesto.keystore": "generate",
        "attesto.sqlalchemy.url": "postgresql+psycopg://db/attesto",
        "attesto.resource": "https://api.example.com/",
        "attesto.revocation_check": "true",
    }
    codes = {f.code for f in check_settings(settings, workers=4)}
    assert "replay-store" not in codes
    assert "revocation-check" not in codes
    del settings["attesto.sqlalchemy.url"]
    codes = {f.code for f in check_settings(settings, workers=4)}
    assert "replay-store" in codes
