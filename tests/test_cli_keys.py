"""``attesto keys generate|list|rotate``: private JWK Set files and the three rotation steps."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from pyramid_attesto.cli import main
from pyramid_attesto.core.keys import FileKeystore


def _keys(path: Path) -> list[dict[str, object]]:
    keys: list[dict[str, object]] = json.loads(path.read_text())["keys"]
    return keys


def test_generate_writes_a_private_file_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    assert main(["keys", "generate", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = FileKeystore(path)
    assert store.algorithms == {"ES256", "RS256"}
    assert all("d" not in k for k in store.jwks()["keys"])
    # An existing file is never overwritten by accident.
    assert main(["keys", "generate", str(path)]) == 1
    assert main(["keys", "generate", str(path), "--alg", "EdDSA", "--force"]) == 0
    assert FileKeystore(path).algorithms == {"EdDSA"}


def test_list_shows_states_and_never_private_members(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    main(["keys", "generate", str(path), "--alg", "ES256"])
    capsys.readouterr()
    assert main(["keys", "list", str(path)]) == 0
    out = capsys.readouterr()
    assert "active" in out.out
    key = _keys(path)[0]
    assert str(key["d"]) not in out.out
    os.chmod(path, 0o644)
    main(["keys", "list", str(path)])
    assert "chmod 600" in capsys.readouterr().err


def test_rotation_add_promote_retire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    main(["keys", "generate", str(path), "--alg", "ES256"])
    old = FileKeystore(path).signer("ES256").kid

    # 1. add: published, not signing.
    assert main(["keys", "rotate", str(path), "--step", "add"]) == 0
    store = FileKeystore(path)
    assert store.signer("ES256").kid == old
    published = [k["kid"] for k in store.jwks()["keys"]]
    assert len(published) == 2
    new = next(k for k in published if k != old)
    assert main(["keys", "rotate", str(path), "--step", "add"]) == 1  # one next key at a time

    # 2. promote: the new key signs, the old one still verifies.
    assert main(["keys", "rotate", str(path), "--step", "promote"]) == 0
    store = FileKeystore(path)
    assert store.signer("ES256").kid == new
    assert {k["kid"] for k in store.jwks()["keys"]} == {old, new}

    # 3. retire: refused while tokens signed by the old key may live.
    capsys.readouterr()
    assert main(["keys", "rotate", str(path), "--step", "retire"]) == 1
    assert "wait" in capsys.readouterr().err
    assert main(["keys", "rotate", str(path), "--step", "retire", "--wait", "0"]) == 0
    store = FileKeystore(path)
    assert [k["kid"] for k in store.jwks()["keys"]] == [new]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_retire_can_keep_the_public_half(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    main(["keys", "generate", str(path), "--alg", "ES256"])
    main(["keys", "rotate", str(path), "--step", "add"])
    main(["keys", "rotate", str(path), "--step", "promote"])
    keys = _keys(path)
    for key in keys:  # as if promoted long ago
        if "attesto_promoted_at" in key:
            key["attesto_promoted_at"] = int(time.time()) - 3600
    path.write_text(json.dumps({"keys": keys}))
    assert main(["keys", "rotate", str(path), "--step", "retire", "--keep-public"]) == 0
    kept = _keys(path)
    assert len(kept) == 2
    assert sum(1 for k in kept if "d" in k) == 1


def test_promote_without_a_next_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    main(["keys", "generate", str(path), "--alg", "ES256"])
    assert main(["keys", "rotate", str(path), "--step", "promote"]) == 1
    assert main(["keys", "rotate", str(path), "--step", "retire", "--force"]) == 1


def test_a_broken_file_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{nope")
    assert main(["keys", "list", str(path)]) == 2
    assert "attesto:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["keys"],
        ["keys", "generate"],
        ["keys", "list"],
        ["keys", "rotate"],
        ["check"],
        ["install"],
        ["db"],
        ["db", "upgrade"],
        ["sweep"],
        ["demo"],
    ],
)
def test_every_subcommand_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    assert "usage: attesto" in capsys.readouterr().out
