"""Proof Key for Code Exchange (RFC 7636), S256 only (DESIGN.md rule 6).

- ``plain`` and any other method are refused at the authorization request (RFC 9700 §2.1.1
  forbids ``plain`` where S256 is possible, and every client can do S256).
- A challenge has the canonical 43-character base64url shape of a SHA-256 digest.
- A verifier is 43 to 128 unreserved characters (RFC 7636 §4.1).
- A verifier sent for a code issued without a challenge is an error (a downgrade attempt,
  RFC 9700 §4.8.2); a code issued with a challenge always needs its verifier.
- The comparison is constant-time.
"""

from __future__ import annotations

import re

from .errors import InvalidGrant, InvalidRequest
from .secret import constant_time_equals, sha256_b64url

__all__ = ["S256", "challenge_for", "validate_challenge", "verify"]

S256 = "S256"
_VERIFIER = re.compile(r"\A[A-Za-z0-9\-._~]{43,128}\Z")
_CHALLENGE = re.compile(r"\A[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]\Z")


def challenge_for(verifier: str) -> str:
    """The S256 challenge of ``verifier``: ``BASE64URL(SHA256(ASCII(verifier)))``."""
    return sha256_b64url(verifier.encode("ascii"))


def validate_challenge(challenge: str | None, method: str | None) -> str | None:
    """Validate the ``code_challenge`` / ``code_challenge_method`` pair of an authorization
    request and return the challenge to store (``None`` when none was sent).

    A missing method means ``plain`` (RFC 7636 §4.3), which is refused.
    """
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method without code_challenge", reason="pkce")
        return None
    if method != S256:
        raise InvalidRequest("code_challenge_method must be S256", reason="pkce_method")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is not a S256 challenge", reason="pkce_challenge")
    return challenge


def verify(verifier: str | None, challenge: str | None) -> None:
    """Check the token request's ``code_verifier`` against the code's stored challenge.

    Every failure is ``invalid_grant`` (RFC 7636 §4.6), including a verifier sent for a code
    that was issued without a challenge.
    """
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant(
                "code_verifier sent for a code issued without PKCE", reason="pkce_downgrade"
            )
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required", reason="pkce_missing")
    if not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier is malformed", reason="pkce_malformed")
    if not constant_time_equals(challenge_for(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the challenge", reason="pkce_mismatch")
