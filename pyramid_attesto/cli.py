"""The ``attesto`` command (``attesto --help``; ``--help`` on every subcommand).

``attesto demo``
    runs the demo host application (:mod:`pyramid_attesto.demo`).
``attesto db upgrade|downgrade|current``
    manages the attesto Alembic lineage (version table ``attesto_alembic_version``) of a
    database. The database URL comes from ``--url`` or ``$ATTESTO_DATABASE_URL``.
``attesto sweep``
    deletes expired rows in bounded batches (family revocation tombstones are kept).
``attesto keys generate|list|rotate``
    private JWK Set files (mode 0600): generate one, list its keys and their state, rotate
    without downtime in three steps (``--step add``, ``--step promote``, ``--step retire``),
    each rolled out to every process before the next (docs: the key-rotation guide).
``attesto check CONFIG.ini``
    reports every insecure or inconsistent setting, with its fix (:mod:`pyramid_attesto.check`).
``attesto install``
    scaffolds pyramid_attesto into an existing Pyramid project
    (:mod:`pyramid_attesto.scaffold`); running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["generate_key_file", "main"]

_URL_HELP = "database URL (default: $ATTESTO_DATABASE_URL); PostgreSQL or SQLite"
_ALGS = ("ES256", "EdDSA", "RS256", "PS256")
_ADDED = "attesto_added_at"
_PROMOTED = "attesto_promoted_at"
_DEFAULT_WAIT = 900 + 30  # the default access-token lifetime and verification leeway


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attesto", description="pyramid_attesto: OAuth 2.x / OIDC for Pyramid"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the demo authorization server (SQLite)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=None, help="default: $ATTESTO_DEMO_PORT or 6543")

    db = sub.add_parser("db", help="migrate the attesto tables (their own Alembic lineage)")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, text in (
        ("upgrade", "migrate up to REVISION (default: head)"),
        ("downgrade", "migrate down to REVISION (default: base, which drops the tables)"),
        ("current", "print the revision the database is at"),
    ):
        action = db_sub.add_parser(name, help=text)
        action.add_argument("--url", default=None, help=_URL_HELP)
        if name != "current":
            action.add_argument("revision", nargs="?", default=None)

    sweep = sub.add_parser("sweep", help="delete expired rows in bounded batches")
    sweep.add_argument("--url", default=None, help=_URL_HELP)
    sweep.add_argument("--batch-size", type=int, default=1000)
    sweep.add_argument("--max-batches", type=int, default=None, help="per table (default: all)")

    keys = sub.add_parser("keys", help="private JWK Set files: generate, list, rotate")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    gen = keys_sub.add_parser(
        "generate", help="write a new private JWK Set file (mode 0600), one key per algorithm"
    )
    gen.add_argument("file", type=Path)
    gen.add_argument(
        "--alg",
        action="append",
        choices=_ALGS,
        help="repeatable (default: ES256 for access tokens and RS256 for ID tokens)",
    )
    gen.add_argument("--rsa-bits", type=int, default=2048)
    gen.add_argument("--force", action="store_true", help="overwrite an existing file")
    listing = keys_sub.add_parser("list", help="list the keys of a file and their state")
    listing.add_argument("file", type=Path)
    rotate = keys_sub.add_parser(
        "rotate",
        help="one step of a rotation: add the next key, promote it, retire the old one",
        description="Rotation without downtime, three steps; roll each out to every process "
        "(restart or reload) before the next. add: publish the next key (it signs nothing "
        "yet; wait until every verifier has refetched the JWK Set). promote: make it the "
        "active signer (the old key stays published). retire: once every token the old key "
        "signed has expired (--wait, default 930 s = the default access-token lifetime plus "
        "leeway; use your longest token lifetime), remove the old key.",
    )
    rotate.add_argument("file", type=Path)
    rotate.add_argument("--step", required=True, choices=("add", "promote", "retire"))
    rotate.add_argument("--alg", default="ES256", choices=_ALGS)
    rotate.add_argument("--rsa-bits", type=int, default=2048)
    rotate.add_argument(
        "--wait",
        type=int,
        default=_DEFAULT_WAIT,
        help="retire: seconds since the promotion before the old key may go (default 930)",
    )
    rotate.add_argument(
        "--keep-public",
        action="store_true",
        help="retire: keep the old key's public half published (id_token_hint) instead of "
        "removing it",
    )
    rotate.add_argument("--force", action="store_true", help="retire: do not wait")

    check = sub.add_parser(
        "check", help="report insecure or inconsistent settings of an ini file, with fixes"
    )
    check.add_argument("config", type=Path, help="the PasteDeploy ini file (e.g. production.ini)")
    check.add_argument("--name", default="main", help="the [app:NAME] section (default: main)")
    check.add_argument(
        "--workers",
        type=int,
        default=None,
        help="how many processes serve the app (default: 1 for waitress, else assume several)",
    )

    install = sub.add_parser(
        "install", help="scaffold pyramid_attesto into an existing Pyramid project"
    )
    install.add_argument(
        "--route-prefix", default="/oauth", help="where the endpoints are mounted (default /oauth)"
    )
    install.add_argument(
        "--ini", default="development.ini", help="the ini file to extend (default development.ini)"
    )
    install.add_argument(
        "--project", type=Path, default=Path(), help="the project directory (default: .)"
    )
    install.add_argument(
        "--package", default=None, help="the project's Python package (default: from the ini)"
    )
    return parser


def _url(parser: argparse.ArgumentParser, given: str | None) -> str:
    url = given or os.environ.get("ATTESTO_DATABASE_URL")
    if not url:
        parser.error("give --url or set ATTESTO_DATABASE_URL")
    return url


# -- keys ------------------------------------------------------------------------------------


def _read_keys(path: Path) -> list[dict[str, Any]]:
    from .core.errors import ConfigurationError
    from .core.keys import FileKeystore

    FileKeystore(path)  # every key valid, at most one "active" per algorithm
    try:
        keys: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["keys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{path}: not a JWK Set file") from exc
    return keys


def _write_keys(path: Path, keys: list[dict[str, Any]]) -> None:
    """Write atomically, mode 0600 from the start (the file holds private keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"keys": keys}, out, indent=2)
        out.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _new_key(alg: str, rsa_bits: int) -> dict[str, Any]:
    from .core.keys import generate_key

    return dict(generate_key(alg, rsa_bits=rsa_bits))  # type: ignore[arg-type]


def _states(keys: list[dict[str, Any]]) -> list[str]:
    """Each key's state, as :class:`~pyramid_attesto.core.keys.FileKeystore` reads the file."""
    active: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key.get("active") is True:
            active[key["alg"]] = index
    for index, key in enumerate(keys):
        if "d" in key and key.get("alg") not in active:
            active[key["alg"]] = index
    states = []
    for index, key in enumerate(keys):
        if active.get(key.get("alg", "")) == index:
            states.append("active")
        elif "d" not in key:
            states.append("published (public only)")
        elif _PROMOTED in key or _ADDED not in key:
            states.append("published (retiring)")
        else:
            states.append("published (next)")
    return states


def generate_key_file(
    path: Path, algorithms: Sequence[str] = ("ES256", "RS256"), *, rsa_bits: int = 2048
) -> None:
    """Write a new private JWK Set file at ``path`` (mode 0600, atomically): one key per
    algorithm, the first of each algorithm being its active signer."""
    _write_keys(path, [_new_key(alg, rsa_bits) for alg in algorithms])


def _keys_generate(args: argparse.Namespace) -> int:
    path: Path = args.file
    if path.exists() and not args.force:
        print(f"attesto: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    algs = args.alg or ["ES256", "RS256"]
    if len(set(algs)) != len(algs):
        print("attesto: give each --alg once", file=sys.stderr)
        return 2
    generate_key_file(path, algs, rsa_bits=args.rsa_bits)
    print(f"wrote {path} (mode 0600): {', '.join(algs)}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    path: Path = args.file
    keys = _read_keys(path)
    for key, state in zip(keys, _states(keys), strict=True):
        print(f"{key.get('alg', '?'):6} {key.get('kid', '?'):45} {state}")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        print(f"warning: {path} is readable by others (mode {mode:o}): chmod 600", file=sys.stderr)
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    path: Path = args.file
    alg: str = args.alg
    keys = _read_keys(path)
    states = _states(keys)
    mine = [i for i, k in enumerate(keys) if k.get("alg") == alg]
    active = [i for i in mine if states[i] == "active"]
    now = int(time.time())
    if args.step == "add":
        if any(states[i] == "published (next)" for i in mine):
            print(f"attesto: a next {alg} key is already published: promote it", file=sys.stderr)
            return 1
        for i in active:  # pin the current signer: the file order no longer decides
            keys[i]["active"] = True
        key = _new_key(alg, args.rsa_bits)
        key[_ADDED] = now
        keys.append(key)
        _write_keys(path, keys)
        print(
            f"added {alg} key {key['kid']}: published, not signing. Roll this file out to "
            "every process, wait for verifiers to refetch the JWK Set, then "
            f"`attesto keys rotate {path} --step promote --alg {alg}`."
        )
        return 0
    if args.step == "promote":
        following = [i for i in mine if states[i] == "published (next)"]
        if not following:
            print(f"attesto: no next {alg} key: run --step add first", file=sys.stderr)
            return 1
        new = following[-1]
        for i in mine:
            keys[i].pop("active", None)
        keys[new]["active"] = True
        keys[new][_PROMOTED] = now
        keys[new].pop(_ADDED, None)
        _write_keys(path, keys)
        print(
            f"promoted {alg} key {keys[new]['kid']}: it signs new tokens; the old key stays "
            "published. Roll this file out, then after your longest token lifetime "
            f"`attesto keys rotate {path} --step retire --alg {alg}`."
        )
        return 0
    # retire
    retiring = [i for i in mine if states[i] == "published (retiring)"]
    if not retiring or not active:
        print(f"attesto: no retiring {alg} key", file=sys.stderr)
        return 1
    promoted_at = int(keys[active[0]].get(_PROMOTED, 0))
    left = promoted_at + args.wait - now
    if left > 0 and not args.force:
        print(
            f"attesto: tokens signed by the old key may still be live: wait {left} s more "
            "(or --force)",
            file=sys.stderr,
        )
        return 1
    from .core.keys import public_jwk

    kept: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        if i not in retiring:
            kept.append(key)
        elif args.keep_public:
            kept.append(dict(public_jwk(key)))
    keys[active[0]].pop(_PROMOTED, None)
    _write_keys(path, kept)
    gone = ", ".join(str(keys[i].get("kid")) for i in retiring)
    verb = "kept only the public half of" if args.keep_public else "removed"
    print(f"retired {alg}: {verb} {gone}. Roll this file out to every process.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # pyramid 2.1 imports pkg_resources, whose deprecation notice means nothing to a user here.
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import serve

        return serve(host=args.host, port=args.port)

    from .core.errors import ConfigurationError

    try:
        if args.command == "keys":
            command = {
                "generate": _keys_generate,
                "list": _keys_list,
                "rotate": _keys_rotate,
            }[args.keys_command]
            return command(args)
        if args.command == "check":
            from .check import run_check

            return run_check(args.config, name=args.name, workers=args.workers)
        if args.command == "install":
            from .scaffold import install

            return install(
                args.project,
                ini=args.ini,
                route_prefix=args.route_prefix,
                package=args.package,
            )
        url = _url(parser, args.url)
        if args.command == "db":
            from .storage import migrate

            if args.db_command == "upgrade":
                migrate.upgrade(url, args.revision or "heads")
            elif args.db_command == "downgrade":
                migrate.downgrade(url, args.revision or "base")
            print(migrate.current(url) or "(no attesto tables)")
            return 0
        from .storage.engine import make_engine
        from .storage.sweep import sweep

        engine = make_engine(url)
        try:
            counts = sweep(engine, batch_size=args.batch_size, max_batches=args.max_batches)
        finally:
            engine.dispose()
        print(json.dumps(counts, sort_keys=True))
        return 0
    except ConfigurationError as exc:
        print(f"attesto: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
