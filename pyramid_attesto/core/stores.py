"""Store Protocols: what the protocol core needs from persistence (DESIGN.md rule 2).

Implementations live in :mod:`pyramid_attesto.storage` (memory, SQLAlchemy). Every
single-use operation is atomic in the store itself, never read-then-write in Python.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["DPoPNonceStore", "ReplayStore"]


class ReplayStore(Protocol):
    """Single-use keys: DPoP proofs (``sha256(jkt ":" jti)``) and client assertions.

    A full bounded store refuses (reports a replay) rather than evicting live entries
    (DESIGN.md D18).
    """

    def check_and_record(self, key: str, expires_at: int) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds).

        Return ``True`` on first use and ``False`` when the key was already recorded (a
        replay, even if its record has expired but not yet been swept).
        """
        ...


class DPoPNonceStore(Protocol):
    """Server-issued DPoP nonces for the store-backed mode (RFC 9449 §8, §9)."""

    def issue(self, ttl: int) -> str:
        """Create, remember and return a fresh nonce valid for ``ttl`` seconds."""
        ...

    def check(self, nonce: str) -> bool:
        """Whether ``nonce`` was issued here and has not expired."""
        ...
