"""The ``attesto`` command."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attesto", description="pyramid_attesto: OAuth 2.x / OIDC for Pyramid"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the demo authorization server (SQLite)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=None, help="default: $ATTESTO_DEMO_PORT or 6543")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pyramid 2.1 imports pkg_resources, whose deprecation notice means nothing to a user here.
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import serve

        return serve(host=args.host, port=args.port)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
