"""The ``attesto`` command.

``attesto demo`` runs the demo authorization server; ``attesto db upgrade|downgrade|current``
manages the attesto Alembic lineage (version table ``attesto_alembic_version``) of a
database; ``attesto sweep`` deletes expired rows in bounded batches (family revocation
tombstones are kept). The database URL comes from ``--url`` or ``$ATTESTO_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence

__all__ = ["main"]

_URL_HELP = "database URL (default: $ATTESTO_DATABASE_URL); PostgreSQL or SQLite"


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
    return parser


def _url(parser: argparse.ArgumentParser, given: str | None) -> str:
    url = given or os.environ.get("ATTESTO_DATABASE_URL")
    if not url:
        parser.error("give --url or set ATTESTO_DATABASE_URL")
    return url


def main(argv: Sequence[str] | None = None) -> int:
    # pyramid 2.1 imports pkg_resources, whose deprecation notice means nothing to a user here.
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import serve

        return serve(host=args.host, port=args.port)

    from .core.errors import ConfigurationError

    url = _url(parser, args.url)
    try:
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
