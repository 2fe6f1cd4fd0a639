"""``attesto db`` and ``attesto sweep`` against a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect

from pyramid_attesto.cli import main
from pyramid_attesto.storage.engine import make_engine


def test_db_upgrade_current_sweep_downgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'attesto.sqlite'}"
    assert main(["db", "current", "--url", url]) == 0
    assert capsys.readouterr().out.strip() == "(no attesto tables)"

    assert main(["db", "upgrade", "--url", url]) == 0
    head = capsys.readouterr().out.strip()
    assert head
    assert head != "(no attesto tables)"
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert "attesto_alembic_version" in tables
    assert {"attesto_authorization_codes", "attesto_refresh_tokens"} <= tables

    assert main(["sweep", "--url", url, "--batch-size", "10"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts
    assert all(v == 0 for v in counts.values())

    assert main(["db", "downgrade", "--url", url]) == 0
    assert capsys.readouterr().out.strip() == "(no attesto tables)"


def test_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATTESTO_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip() != "(no attesto tables)"


def test_refused_dialect_and_missing_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--url", "mysql://root@127.0.0.1/test"]) == 2
    assert "attesto" in capsys.readouterr().err
    monkeypatch.delenv("ATTESTO_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["db", "current"])
    assert info.value.code == 2
