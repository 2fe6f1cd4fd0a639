"""The resource server's protocol decisions: credentials in, a verified access or a refusal out.

Framework-free (the Pyramid policy in :mod:`pyramid_attesto.policy` only adapts the request and
renders the outcome). What is decided here, in this order:

1. **Credentials** (RFC 6750 §2.1, RFC 9449 §7.1): ``Authorization: Bearer <token>`` or
   ``Authorization: DPoP <token>`` (schemes case-insensitive, RFC 9110 §11.1); a malformed
   field, or a token sent by two methods at once, is ``invalid_request`` (RFC 6750 §3.1).
   Another scheme (``Basic``) is not an OAuth credential and is left to the host.
2. **Scheme policy**: a resource that requires DPoP-bound tokens refuses the Bearer scheme.
3. **The access token** (RFC 9068 §4): signature, ``typ`` ``at+jwt``, ``iss``, ``aud`` naming
   one of this resource's canonical URIs (RFC 8707, DESIGN.md rule 8), ``exp`` / ``nbf`` with
   leeway — by :class:`~pyramid_attesto.core.tokens.AccessTokenVerifier`. ``invalid_token``.
4. **The confirmation** (``cnf``): absent, or exactly one of ``jkt`` (RFC 9449 §6.1) or
   ``x5t#S256`` (RFC 8705 §3.1) holding a SHA-256 thumbprint; anything else is refused
   (``unsupported_confirmation``), never ignored.
5. **The binding**:

   - ``cnf.jkt``: the request must use the DPoP scheme (RFC 9449 §7.2: a DPoP-bound token
     presented as Bearer is refused) with exactly one valid proof (RFC 9449 §4.3, including
     ``ath``, §7.1) whose key is the bound key (``invalid_token``, "key binding");
   - ``cnf.x5t#S256``: the request must present the certificate with that thumbprint
     (RFC 8705 §3);
   - no ``cnf``: the DPoP scheme is refused (the token is not DPoP-bound).

   A resource-server nonce (RFC 9449 §9), when configured, is checked by the proof
   verification: ``use_dpop_nonce`` with a fresh nonce.
6. **Revocation** (optional, off by default): the token's ``jti`` on the denylist is
   ``invalid_token``.
7. **Replay** (RFC 9449 §11.1): the proof's replay key is claimed *last*, once everything
   verified (DESIGN.md rule 7), so anonymous callers cannot grow the replay store.

Scope and step-up checks (:func:`check_scopes`, :func:`check_authentication`) run later, when
the view's requirement is known: ``insufficient_scope`` (RFC 6750 §3.1) and
``insufficient_user_authentication`` (RFC 9470 §3).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from .clock import Clock
from .dpop import DPoPProof, DPoPVerifier, NonceSource, claim_replay, single_dpop_header
from .errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    UseDPoPNonce,
)
from .mtls import ClientCertificate, check_binding
from .scopes import GrantedScopes, ScopeCatalog
from .stores import ReplayStore, RevokedAccessTokenStore
from .tokens import AccessToken, AccessTokenVerifier

__all__ = [
    "Credential",
    "CredentialSource",
    "Refusal",
    "ResourcePolicy",
    "ResourceRequest",
    "ResourceVerifier",
    "Scheme",
    "VerifiedAccess",
    "check_authentication",
    "check_scopes",
    "parse_authorization",
]

Scheme = Literal["Bearer", "DPoP"]
CredentialSource = Literal["header", "body", "extractor"]

# RFC 6750 §2.1 b64token; RFC 9449 §7.1 uses token68, the same characters.
_B64TOKEN: Final = re.compile(r"\A[A-Za-z0-9\-._~+/]+=*\Z")
_SCHEMES: Final[Mapping[str, Scheme]] = {"bearer": "Bearer", "dpop": "DPoP"}
_THUMBPRINT: Final = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")  # base64url of 32 bytes
# The well-formed case in one match (the hot path); anything else takes the slow path below.
_WELL_FORMED: Final = re.compile(r"\A(?:(Bearer)|(DPoP)) ([A-Za-z0-9\-._~+/]{1,16384}=*)\Z")
MAX_CREDENTIAL_LENGTH: Final = 16384


@dataclass(frozen=True, slots=True)
class Credential:
    """An access token and how it was presented. The token never appears in ``repr``."""

    scheme: Scheme
    token: str
    source: CredentialSource = "header"

    def __repr__(self) -> str:
        return f"Credential(scheme={self.scheme!r}, source={self.source!r})"


def parse_authorization(value: str) -> Credential | None:
    """The credential of an ``Authorization`` field value.

    ``None`` when the scheme is not ``Bearer`` or ``DPoP`` (another scheme belongs to the
    host); :class:`~pyramid_attesto.core.errors.InvalidRequest` when it is one of them but
    the field is malformed: no token, several tokens (folded duplicate fields), or characters
    outside RFC 6750 §2.1 ``b64token``.

    >>> parse_authorization("bearer abc.def.ghi")
    Credential(scheme='Bearer', source='header')
    >>> parse_authorization("Basic dXNlcjpwdw==") is None
    True
    """
    match = _WELL_FORMED.match(value)
    if match is not None:
        return Credential("Bearer" if match.group(1) else "DPoP", match.group(3))
    value = value.strip(" \t")
    scheme_text, _, rest = value.partition(" ")
    scheme = _SCHEMES.get(scheme_text.lower())
    if scheme is None:
        return None
    token = rest.strip(" ")
    if not token:
        raise InvalidRequest(f"the {scheme} authorization carries no token", reason="no_token")
    if len(token) > MAX_CREDENTIAL_LENGTH:
        raise InvalidRequest("the access token is too large", reason="token_too_large")
    if not _B64TOKEN.match(token):
        raise InvalidRequest(
            f"malformed {scheme} authorization (one token of RFC 6750 2.1 characters)",
            reason="malformed_authorization",
        )
    return Credential(scheme, token)


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """What the resource server needs from an HTTP request.

    ``url`` is the canonical URL (DESIGN.md rule 1), ``dpop`` the values of every ``DPoP``
    header field, ``certificate`` the client certificate a trusted source presented. ``url``
    and ``certificate`` may be zero-argument callables, called only when needed (the URL for
    a DPoP proof, the certificate for a certificate-bound token), so a plain Bearer request
    pays for neither.
    """

    method: str
    url: str | Callable[[], str]
    credential: Credential
    dpop: Sequence[str] = ()
    certificate: ClientCertificate | Callable[[], ClientCertificate | None] | None = None


@dataclass(frozen=True, slots=True)
class VerifiedAccess:
    """A request whose access token verified, with its binding checked."""

    token: AccessToken
    scheme: Scheme
    proof: DPoPProof | None = None

    @property
    def binding(self) -> Literal["dpop", "mtls"] | None:
        cnf = self.token.cnf
        if not cnf:
            return None
        return "dpop" if "jkt" in cnf else "mtls"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused, and the scheme its challenge must use."""

    error: OAuthError
    scheme: Scheme

    @property
    def reason(self) -> str:
        return self.error.reason or self.error.error


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """The resource server's choices.

    ``require_dpop`` refuses Bearer-scheme requests (``dpop_bound_access_tokens_required``,
    RFC 9728 §2). ``nonces`` turns on resource-server DPoP nonces (RFC 9449 §9).
    ``revocation`` turns on the access-token denylist check (off by default: it costs a read
    per request).
    """

    require_dpop: bool = False
    nonces: NonceSource | None = None
    revocation: RevokedAccessTokenStore | None = None


def _confirmation(token: AccessToken) -> tuple[str, str] | None:
    """``("jkt" | "x5t#S256", thumbprint)``, ``None`` for an unbound token; refuses others."""
    cnf = token.cnf
    if cnf is None:
        return None
    if len(cnf) != 1:
        raise InvalidToken("unsupported token confirmation", reason="unsupported_confirmation")
    ((method, value),) = cnf.items()
    if method not in ("jkt", "x5t#S256") or not isinstance(value, str):
        raise InvalidToken("unsupported token confirmation", reason="unsupported_confirmation")
    if not _THUMBPRINT.match(value):
        raise InvalidToken("malformed token confirmation", reason="unsupported_confirmation")
    return method, value


class ResourceVerifier:
    """Verifies resource requests (see the module docstring for the order of checks).

    ``replay`` is where DPoP replay keys are claimed: a store whose claim commits on its own
    (the SQL replay store in its own short transaction, DESIGN.md rule 3's one exception),
    or ``None`` to fail closed on any DPoP request. ``on_replay_claim`` lets the caller wrap
    the claim (e.g. in that short transaction); by default the store is called directly.
    """

    __slots__ = ("_claim", "clock", "dpop", "policy", "replay", "tokens")

    def __init__(
        self,
        *,
        tokens: AccessTokenVerifier,
        dpop: DPoPVerifier,
        replay: ReplayStore | None,
        clock: Clock,
        policy: ResourcePolicy | None = None,
        on_replay_claim: Callable[[DPoPProof], None] | None = None,
    ) -> None:
        self.tokens = tokens
        self.dpop = dpop
        self.replay = replay
        self.clock = clock
        self.policy = policy or ResourcePolicy()
        self._claim = on_replay_claim or self._claim_in_store

    def _claim_in_store(self, proof: DPoPProof) -> None:
        if self.replay is None:
            raise InvalidDPoPProof(
                "DPoP is not available at this resource", reason="replay_store_unconfigured"
            )
        claim_replay(proof, self.replay)

    def verify(self, request: ResourceRequest) -> VerifiedAccess | Refusal:
        """A :class:`VerifiedAccess`, or the :class:`Refusal` to render."""
        scheme = request.credential.scheme
        try:
            return self._verify(request)
        except OAuthError as error:
            if isinstance(error, (InvalidDPoPProof, UseDPoPNonce)):
                error.with_status(401)  # 400 at the token endpoint, 401 here (RFC 9449 §7.1, §9)
            hint: Scheme = scheme
            if error.reason in ("dpop_bound_as_bearer", "dpop_required"):
                hint = "DPoP"
            return Refusal(error, hint)

    def _verify(self, request: ResourceRequest) -> VerifiedAccess:
        credential = request.credential
        scheme = credential.scheme
        policy = self.policy
        if scheme == "Bearer" and policy.require_dpop:
            raise InvalidToken(
                "this resource accepts only DPoP-bound tokens", reason="dpop_required"
            )
        token = self.tokens.verify(credential.token)
        confirmation = _confirmation(token)
        proof: DPoPProof | None = None
        if confirmation is None:
            if scheme == "DPoP":
                raise InvalidToken("the access token is not DPoP-bound", reason="not_dpop_bound")
        elif confirmation[0] == "jkt":
            if scheme != "DPoP":
                raise InvalidToken(
                    "a DPoP-bound token must be sent with the DPoP scheme",
                    reason="dpop_bound_as_bearer",
                )
            url = request.url
            proof = self.dpop.verify(
                single_dpop_header(request.dpop),
                htm=request.method,
                htu=url() if callable(url) else url,
                access_token=credential.token,
                nonces=policy.nonces,
            )
            if not hmac.compare_digest(proof.jkt, confirmation[1]):
                raise InvalidToken("invalid DPoP key binding", reason="jkt_mismatch")
        else:
            if scheme == "DPoP":
                raise InvalidToken("the access token is not DPoP-bound", reason="not_dpop_bound")
            certificate = request.certificate
            check_binding(token.cnf, certificate() if callable(certificate) else certificate)
        if policy.revocation is not None and policy.revocation.is_revoked(token.jti):
            raise InvalidToken("the access token has been revoked", reason="revoked")
        if proof is not None:
            self._claim(proof)
        return VerifiedAccess(token, scheme, proof)


def check_scopes(
    granted: GrantedScopes, required: Sequence[str], catalog: ScopeCatalog | None = None
) -> InsufficientScope | None:
    """``insufficient_scope`` naming every required scope when one is not covered
    (RFC 6750 §3.1: the ``scope`` attribute lists what the request needs)."""
    for scope in required:
        if not granted.covers(scope, catalog):
            return InsufficientScope(
                "the access token lacks a required scope",
                scope=" ".join(required),
                reason="insufficient_scope",
            )
    return None


def check_authentication(
    claims: Mapping[str, Any],
    *,
    acr_values: Sequence[str] = (),
    max_age: int | None = None,
    now: float,
) -> InsufficientUserAuthentication | None:
    """RFC 9470 §3: the token's ``acr`` must be one of ``acr_values`` and its ``auth_time``
    no older than ``max_age`` seconds; otherwise ``insufficient_user_authentication``."""
    if acr_values:
        acr = claims.get("acr")
        if not isinstance(acr, str) or acr not in acr_values:
            return InsufficientUserAuthentication(
                "a different authentication level is required", reason="acr"
            )
    if max_age is not None:
        auth_time = claims.get("auth_time")
        if (
            isinstance(auth_time, bool)
            or not isinstance(auth_time, (int, float))
            or now - auth_time > max_age
        ):
            return InsufficientUserAuthentication(
                "more recent authentication is required", reason="max_age"
            )
    return None
