"""The demo host application (``make demo`` / ``attesto demo``)."""

from __future__ import annotations


def serve(host: str = "127.0.0.1", port: int | None = None) -> int:
    raise SystemExit("the demo is being built")
