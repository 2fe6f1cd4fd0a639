"""The authorization endpoint's flow (RFC 6749 §4.1.1-§4.1.2) and the PAR endpoint's
(RFC 9126 §2), over :mod:`.authorization` (request validation) and :mod:`.jarm` (responses).

The pending request (DESIGN.md D13): a validated request waits in the PAR store under a
``urn:ietf:params:oauth:request_uri:`` reference, bound to its client — a pushed request
(``pushed=True``) or an inline one parked while the user logs in and consents
(``pushed=False``). The host's login and consent pages send the browser back to
:attr:`PendingAuthorization.resume_url` (``client_id`` and that reference only), so the
resumed request is the stored one and no query parameter is trusted again. The entry is
claimed once, when the code is issued.

The code (RFC 6749 §4.1.2) carries what the token endpoint checks: the client, the exact
redirect URI and whether it was sent, the PKCE challenge, the scope, the resources, the
``nonce``, the ``dpop_jkt`` binding (RFC 9449 §10) and the authentication time. Every
response carries ``iss`` (RFC 9207), in the response mode the request asked for; in a JARM
mode, success and errors alike are signed by the :class:`~.jarm.JARMEncoder` with the
client's ``authorization_signed_response_alg`` (JARM §2.2, §3).

A pushed request made with a request object (RFC 9101) was verified at PAR; when it is used,
the server's and the client's ``require_signed_request_object`` are checked again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlencode

from .authorization import (
    PAR_REQUEST_URI_PREFIX,
    AuthorizationRequest,
    AuthorizationRequestValidator,
    LocalAuthorizationError,
    RedirectableAuthorizationError,
    parse_pushed_reference,
    resolve_pushed_request,
)
from .clients import Client
from .clock import Clock
from .dpop import DPoPProof, claim_replay
from .errors import (
    InvalidDPoPProof,
    InvalidRequest,
    InvalidRequestURI,
    InvalidScope,
    OAuthError,
    ServerError,
)
from .host import Event, ScopePolicy
from .jarm import AuthorizationResponse, JARMEncoder, error_response, success_response
from .keys import SIGNING_ALGORITHMS, Algorithm
from .secret import constant_time_equals, generate_secret, sha256_b64url
from .stores import AuthorizationCode, PushedRequest, Stores

_BROWSER = "browser"


def _same_browser(stored: object, browser: str) -> bool:
    return isinstance(stored, str) and constant_time_equals(sha256_b64url(browser), stored)


__all__ = ["Authenticated", "AuthorizationService", "PendingAuthorization", "PushedResponse"]


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The resource owner a :class:`~.host.ConsentPolicy` authenticated."""

    subject: str
    auth_time: int | None = None
    acr: str | None = None


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """A validated authorization request waiting for login and consent."""

    client: Client
    request: AuthorizationRequest
    request_uri: str
    """Its reference in the PAR store."""
    resume_url: str
    """Send the browser here to continue (``client_id`` and ``request_uri`` only)."""
    pushed: bool


@dataclass(frozen=True, slots=True)
class PushedResponse:
    """RFC 9126 §2.2: the ``request_uri`` and its lifetime in seconds."""

    request_uri: str
    expires_in: int


class AuthorizationService:
    """Validation, parking, resumption and code issuance of authorization requests."""

    def __init__(
        self,
        validator: AuthorizationRequestValidator,
        *,
        issuer: str,
        authorize_url: str,
        code_ttl: int,
        pending_ttl: int,
        clock: Clock,
        emit: Callable[[Event], None],
        scope_policy: ScopePolicy | None = None,
        jarm: JARMEncoder | None = None,
        jarm_algorithms: frozenset[str] = frozenset(),
    ) -> None:
        self.validator = validator
        self.jarm = jarm
        self.jarm_algorithms = jarm_algorithms
        self.scope_policy = scope_policy
        self.issuer = issuer
        self.authorize_url = authorize_url
        self.code_ttl = code_ttl
        self.pending_ttl = pending_ttl
        self.clock = clock
        self._emit = emit

    def _resume_url(self, client_id: str, request_uri: str) -> str:
        query = urlencode({"client_id": client_id, "request_uri": request_uri})
        return f"{self.authorize_url}?{query}"

    def _client(self, client_id: str) -> Client:
        client = self.validator.clients.load_client(client_id)
        if client is None:
            raise LocalAuthorizationError(
                InvalidRequestURI("the request_uri is unknown or expired", reason="client_gone")
            )
        return client

    # -- the authorization endpoint -------------------------------------------------------

    def start(
        self, params: Mapping[str, Sequence[str]], stores: Stores, browser: str
    ) -> PendingAuthorization:
        """Resolve a pushed or pending request, or validate a new one and park it.

        ``browser`` is the browser's binding secret (a cookie): a parked request keeps its
        hash and resumes only in the same browser (D13); a pushed request is bound to its
        client only (RFC 9126 §4). Raises :class:`~.authorization.LocalAuthorizationError`
        or :class:`~.authorization.RedirectableAuthorizationError`.
        """
        reference = parse_pushed_reference(params)
        now = int(self.clock.now())
        if reference is not None:
            stored = stores.requests.fetch(reference.request_uri, reference.client_id)
            if stored is not None and stored.expires_at <= now:
                stored = None
            request = resolve_pushed_request(reference, stored.params if stored else None)
            assert stored is not None
            if not stored.pushed and not _same_browser(stored.params.get(_BROWSER), browser):
                raise LocalAuthorizationError(
                    InvalidRequestURI(
                        "the authorization request was started in another browser",
                        reason="other_browser",
                    )
                )
            client = self._client(request.client_id)
            if not request.request_object and (
                self.validator.policy.require_signed_request_object
                or client.require_signed_request_object
            ):
                # RFC 9101 §10.5, checked again when the pushed request is used: a policy
                # or client registration that changed since the push still holds.
                raise LocalAuthorizationError(
                    InvalidRequest(
                        "this client must use a signed request object", reason="unsigned_request"
                    )
                )
            if not stored.pushed and (
                self.validator.policy.require_pushed_authorization_requests
                or client.require_pushed_authorization_requests
            ):
                raise LocalAuthorizationError(
                    InvalidRequest(
                        "this client must use pushed authorization requests",
                        reason="par_required",
                    )
                )
            return PendingAuthorization(
                client=client,
                request=request,
                request_uri=reference.request_uri,
                resume_url=self._resume_url(client.client_id, reference.request_uri),
                pushed=stored.pushed,
            )
        request = self.validator.validate(params)
        client = self._client(request.client_id)
        request_uri = PAR_REQUEST_URI_PREFIX + generate_secret()
        stores.requests.put(
            request_uri,
            PushedRequest(
                client_id=client.client_id,
                params={**request.to_pending(), _BROWSER: sha256_b64url(browser)},
                expires_at=now + self.pending_ttl,
                pushed=False,
            ),
        )
        return PendingAuthorization(
            client=client,
            request=request.with_request_uri(request_uri),
            request_uri=request_uri,
            resume_url=self._resume_url(client.client_id, request_uri),
            pushed=False,
        )

    def issue_code(
        self, pending: PendingAuthorization, owner: Authenticated, stores: Stores
    ) -> AuthorizationResponse:
        """Claim the pending request (single use) and answer with a fresh code."""
        request = pending.request
        alg = self._jarm_alg(pending.client, request.response_mode)
        scopes = request.scopes
        if self.scope_policy is not None:
            try:
                granted = tuple(
                    self.scope_policy.authorize_scope(
                        pending.client, request.scopes, subject=owner.subject
                    )
                )
            except OAuthError as exc:
                raise request.redirect_error(exc, self.issuer) from None
            if not granted or not set(granted) <= set(request.scopes):
                raise request.redirect_error(
                    InvalidScope("the scope policy granted nothing usable", reason="policy"),
                    self.issuer,
                )
            scopes = granted
        taken = stores.requests.take(pending.request_uri, pending.client.client_id)
        if taken is None:
            raise LocalAuthorizationError(
                InvalidRequestURI("the request_uri is unknown or expired", reason="taken")
            )
        code = generate_secret()
        stores.codes.put(
            code,
            AuthorizationCode(
                client_id=request.client_id,
                subject=owner.subject,
                redirect_uri=request.redirect_uri,
                scope=scopes,
                expires_at=int(self.clock.now()) + self.code_ttl,
                resource=request.resources,
                code_challenge=request.code_challenge,
                nonce=request.nonce,
                dpop_jkt=request.dpop_jkt,
                auth_time=owner.auth_time,
                acr=owner.acr,
                extra={"redirect_uri_in_request": request.redirect_uri_explicit},
            ),
        )
        self._emit(
            Event(
                "code_issued",
                client_id=request.client_id,
                subject=owner.subject,
                scope=" ".join(scopes),
            )
        )
        return success_response(
            request.target(self.issuer),
            code,
            jarm=self.jarm,
            alg=alg,
        )

    def deny(self, pending: PendingAuthorization, cause: OAuthError) -> AuthorizationResponse:
        """Answer ``cause`` (``access_denied``, ``login_required``...) at the redirect URI;
        the pending request is dropped."""
        self._emit(
            Event(
                "authorization_denied",
                client_id=pending.client.client_id,
                result="failure",
                reason=cause.reason or cause.error,
            )
        )
        return self.error_response(
            pending.request.redirect_error(cause, self.issuer), pending.client
        )

    def error_response(
        self, error: RedirectableAuthorizationError, client: Client | None = None
    ) -> AuthorizationResponse:
        """``error`` at its target, in the response mode the request asked for: a JARM mode
        signs it too (JARM §2.2) with the client's ``authorization_signed_response_alg``
        (the client is loaded when not given; the target exists only for a known client)."""
        alg = None
        if error.target.response_mode.endswith(".jwt"):
            client = client or self.validator.clients.load_client(error.target.client_id)
            if client is None:
                raise LocalAuthorizationError(error.cause)
            alg = self._jarm_alg(client, error.target.response_mode)
        return error_response(error, jarm=self.jarm, alg=alg)

    def _jarm_alg(self, client: Client, mode: str) -> Algorithm | None:
        if self.jarm is None or not mode.endswith(".jwt"):
            return None
        alg = client.authorization_signed_response_alg
        if alg is None:
            # The keystore's default when JARM may use it, else the first allowed one.
            default = self.jarm.keystore.signer().alg
            if default in self.jarm_algorithms:
                return default
            return next(a for a in SIGNING_ALGORITHMS if a in self.jarm_algorithms)
        if alg not in self.jarm_algorithms:
            # The host registered an algorithm the server does not sign JARM with: a server
            # misconfiguration, shown locally (never an unsigned or differently signed answer).
            raise LocalAuthorizationError(
                ServerError(
                    "the client's authorization_signed_response_alg is not available",
                    reason="jarm_alg",
                )
            )
        return cast(Algorithm, alg)

    def drop(self, pending: PendingAuthorization, stores: Stores) -> None:
        stores.requests.take(pending.request_uri, pending.client.client_id)

    # -- the PAR endpoint (RFC 9126 §2) ---------------------------------------------------

    def push(
        self,
        params: Mapping[str, Sequence[str]],
        client: Client,
        stores: Stores,
        proof: DPoPProof | None = None,
    ) -> PushedResponse:
        """Validate a pushed request of the authenticated ``client`` and store it.

        Errors are the validator's (rendered as JSON at this endpoint, RFC 9126 §2.3). A DPoP
        proof binds the code to its key (RFC 9449 §10.1): a ``dpop_jkt`` parameter must
        then name the same key.
        """
        request: AuthorizationRequest = self.validator.validate(params, client=client, pushed=True)
        if proof is not None:
            if request.dpop_jkt is not None and request.dpop_jkt != proof.jkt:
                raise InvalidDPoPProof(
                    "dpop_jkt does not match the DPoP proof key", reason="jkt_mismatch"
                )
            request = replace(request, dpop_jkt=proof.jkt)
            claim_replay(proof, stores.replay)  # DESIGN.md rule 7: after validation
        request_uri = PAR_REQUEST_URI_PREFIX + generate_secret()
        stores.requests.put(
            request_uri,
            PushedRequest(
                client_id=client.client_id,
                params=request.to_pending(),
                expires_at=int(self.clock.now()) + self.pending_ttl,
                pushed=True,
            ),
        )
        return PushedResponse(request_uri, self.pending_ttl)


def describe(pending: PendingAuthorization) -> dict[str, Any]:
    """What a consent page may show (no secret, nothing the client did not register or ask)."""
    return {
        "client_id": pending.client.client_id,
        "client_name": pending.client.client_name,
        "scopes": list(pending.request.scopes),
        "resources": list(pending.request.resources),
    }
