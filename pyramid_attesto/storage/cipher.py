"""Encryption at rest of the refresh successor (D12).

A retry inside the grace window must get back the *same* successor the first rotation minted,
so that one secret is kept recoverable: sealed with AES-256-GCM under a key derived by HKDF
(RFC 5869, SHA-256) from ``attesto.refresh_successor_secret``. The associated data binds the
ciphertext to its parent and child hashes, so a blob copied onto another row does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.core.secret import constant_time_equals, hash_secret

__all__ = ["MIN_SECRET_BYTES", "SuccessorCipher"]

MIN_SECRET_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12
_INFO = b"pyramid_attesto refresh successor v1"
_AAD_PREFIX = b"attesto:refresh-successor:v1\x00"


class SuccessorCipher:
    """Seal and open refresh successors.

    >>> cipher = SuccessorCipher("s" * 32)
    >>> blob = cipher.seal("child-token", parent_hash="p", child_hash=hash_secret("child-token"))
    >>> cipher.open(blob, parent_hash="p", child_hash=hash_secret("child-token"))
    'child-token'
    """

    __slots__ = ("_aead",)

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        if len(raw) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"attesto.refresh_successor_secret needs at least {MIN_SECRET_BYTES} bytes"
            )
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_INFO).derive(raw)
        self._aead = AESGCM(key)

    @staticmethod
    def _aad(parent_hash: str, child_hash: str) -> bytes:
        return _AAD_PREFIX + parent_hash.encode("ascii") + b"\x00" + child_hash.encode("ascii")

    def seal(self, successor: str, *, parent_hash: str, child_hash: str) -> bytes:
        """Encrypt ``successor`` for the row of ``parent_hash``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(
            nonce, successor.encode("utf-8"), self._aad(parent_hash, child_hash)
        )
        return _VERSION + nonce + sealed

    def open(self, blob: bytes, *, parent_hash: str, child_hash: str) -> str | None:
        """The successor, or ``None`` if the blob does not open with this secret and row."""
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            return None
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            plain = self._aead.decrypt(nonce, sealed, self._aad(parent_hash, child_hash))
        except InvalidTag:
            return None
        successor = plain.decode("utf-8")
        if not constant_time_equals(hash_secret(successor), child_hash):
            return None
        return successor
