"""Strict base64url (RFC 4648 §5, without padding, as RFC 7515 §2 uses it).

JOSE parsing itself goes through joserfc; these helpers serve the values around it
(thumbprints, ``ath``, PKCE challenges, secrets).
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["b64url_decode", "b64url_encode", "is_b64url"]

_B64URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_b64url(value: str) -> bool:
    """Return whether ``value`` is made only of the unpadded base64url alphabet."""
    return bool(_B64URL.match(value)) and len(value) % 4 != 1


def b64url_decode(value: str) -> bytes:
    """Decode unpadded base64url text, refusing padding, other alphabets and
    non-canonical trailing bits (so that one value has exactly one encoding).

    Raises :class:`ValueError` on anything else.
    """
    if not is_b64url(value):
        raise ValueError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - alphabet checked above
        raise ValueError("not unpadded base64url") from exc
    if b64url_encode(data) != value:
        raise ValueError("non-canonical base64url")
    return data
