"""Sender constraints carried from a grant to the token it yields (DESIGN.md D9).

No grant issues a token less constrained than its input: when the input (the subject or
actor token of a token exchange, an ID-JAG or RFC 7523 assertion) carries a ``cnf``, the
request must prove the same key, and the new token is bound to it:

- ``cnf.jkt`` (RFC 9449 §6.1): the request's DPoP proof must be made with that key; the new
  token gets the same ``cnf.jkt`` and ``token_type`` ``DPoP``. Otherwise
  ``invalid_dpop_proof`` (a missing proof or another key).
- ``cnf["x5t#S256"]`` (RFC 8705 §3.1): the request's client certificate must have that
  thumbprint; the new token gets the same ``cnf`` and ``token_type`` ``Bearer``. Otherwise
  ``invalid_grant``. A DPoP proof on such a request is refused (one key binds a token).
- a ``cnf`` with anything else (no member, both, unknown members, a malformed thumbprint) is
  ``invalid_grant``: a confirmation we cannot check is not dropped.

Without a bound input the usual rules apply: a DPoP proof binds the token to its key
(RFC 9449 §5); a client registered with ``dpop_bound_access_tokens`` must send one; a client
registered with ``tls_client_certificate_bound_access_tokens`` gets a certificate-bound
token and must present its certificate (RFC 8705 §3). The result never says ``N_A``:
an access token's ``token_type`` is ``Bearer`` or ``DPoP``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .clients import Client
from .errors import InvalidDPoPProof, InvalidGrant, InvalidRequest
from .secret import constant_time_equals

__all__ = ["PresentedKeys", "TokenBinding", "bind_token"]

_THUMBPRINT: Final = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
X5T: Final = "x5t#S256"


@dataclass(frozen=True, slots=True)
class PresentedKeys:
    """What the token request proved: the JWK thumbprint of its verified DPoP proof
    (RFC 9449 §4.3; replay not yet claimed) and the ``x5t#S256`` thumbprint of its client
    certificate (RFC 8705 §3.1)."""

    dpop_jkt: str | None = None
    certificate_thumbprint: str | None = None


@dataclass(frozen=True, slots=True)
class TokenBinding:
    """The ``cnf`` of the token to mint (``None``: a bearer token) and its ``token_type``."""

    cnf: Mapping[str, str] | None
    token_type: Literal["Bearer", "DPoP"]


def _confirmation(cnf: object) -> tuple[str, str]:
    if not isinstance(cnf, Mapping) or len(cnf) != 1:
        raise InvalidGrant("the grant's confirmation is not supported", reason="unsupported_cnf")
    ((method, value),) = cnf.items()
    if method not in ("jkt", X5T) or not isinstance(value, str) or not _THUMBPRINT.match(value):
        raise InvalidGrant("the grant's confirmation is not supported", reason="unsupported_cnf")
    return method, value


def bind_token(
    required: Iterable[Mapping[str, Any] | None], presented: PresentedKeys, client: Client
) -> TokenBinding:
    """The binding of the new token, given the ``cnf`` of each input (``None`` for an
    unbound one); raises the errors of the module documentation."""
    methods: set[str] = set()
    for cnf in required:
        if cnf is None:
            continue
        method, thumbprint = _confirmation(cnf)
        methods.add(method)
        if method == "jkt":
            if presented.dpop_jkt is None:
                raise InvalidDPoPProof(
                    "the grant is bound to a DPoP key: send a proof", reason="dpop_required"
                )
            if not constant_time_equals(presented.dpop_jkt, thumbprint):
                raise InvalidDPoPProof(
                    "the DPoP key is not the key the grant is bound to", reason="jkt_mismatch"
                )
        else:
            if presented.certificate_thumbprint is None:
                raise InvalidGrant(
                    "the grant is bound to a client certificate", reason="certificate_required"
                )
            if not constant_time_equals(presented.certificate_thumbprint, thumbprint):
                raise InvalidGrant(
                    "the client certificate is not the one the grant is bound to",
                    reason="certificate_mismatch",
                )
    if methods == {"jkt", X5T}:
        raise InvalidGrant("the grant is bound to two different keys", reason="conflicting_cnf")
    if "jkt" in methods:
        assert presented.dpop_jkt is not None
        return TokenBinding({"jkt": presented.dpop_jkt}, "DPoP")
    if X5T in methods:
        if presented.dpop_jkt is not None:
            raise InvalidDPoPProof(
                "the grant is bound to a client certificate, not a DPoP key",
                reason="dpop_unexpected",
            )
        assert presented.certificate_thumbprint is not None
        return TokenBinding({X5T: presented.certificate_thumbprint}, "Bearer")
    return _unbound(presented, client)


def _unbound(presented: PresentedKeys, client: Client) -> TokenBinding:
    if presented.dpop_jkt is not None:
        return TokenBinding({"jkt": presented.dpop_jkt}, "DPoP")
    if client.dpop_bound_access_tokens:
        raise InvalidDPoPProof("this client must use DPoP", reason="missing")
    if client.tls_client_certificate_bound_access_tokens:
        if presented.certificate_thumbprint is None:
            raise InvalidRequest(
                "this client's tokens are bound to its TLS client certificate: present one",
                reason="certificate_missing",
            )
        return TokenBinding({X5T: presented.certificate_thumbprint}, "Bearer")
    return TokenBinding(None, "Bearer")
