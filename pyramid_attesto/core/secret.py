"""Secrets: generation, hashing for storage, constant-time comparison.

DESIGN.md rule 4: codes, refresh tokens and registration access tokens are stored only as
hashes, and every comparison of a secret is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .encoding import b64url_encode

__all__ = ["constant_time_equals", "generate_secret", "hash_secret", "sha256_b64url"]

MIN_SECRET_BYTES = 32


def generate_secret(nbytes: int = MIN_SECRET_BYTES) -> str:
    """Return a fresh random secret of at least 256 bits, base64url-encoded (43+ chars)."""
    if nbytes < MIN_SECRET_BYTES:
        raise ValueError(f"a secret needs at least {MIN_SECRET_BYTES} random bytes")
    return b64url_encode(secrets.token_bytes(nbytes))


def sha256_b64url(value: str | bytes) -> str:
    """``base64url(sha256(value))``: the shape of ``ath``, ``jkt``, ``x5t#S256`` and PKCE."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return b64url_encode(hashlib.sha256(data).digest())


def hash_secret(value: str) -> str:
    """The storage key of a code, refresh token or registration access token.

    The secrets are 256-bit random values, so a plain SHA-256 is a preimage-resistant
    index (no salt or slow hash is needed, unlike for passwords).
    """
    return sha256_b64url(value)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets in time independent of where they differ and of their lengths.

    Both sides are hashed first, so neither the content nor the length leaks.
    """
    da = hashlib.sha256(a.encode("utf-8") if isinstance(a, str) else a).digest()
    db = hashlib.sha256(b.encode("utf-8") if isinstance(b, str) else b).digest()
    return hmac.compare_digest(da, db)
