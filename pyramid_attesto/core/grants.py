"""The token endpoint's grants: RFC 6749 §4.1.3 (``authorization_code``), §4.4
(``client_credentials``) and §6 (``refresh_token``), with RFC 7636 PKCE, RFC 8707 resource
indicators, RFC 9449 DPoP-bound tokens and RFC 9700 §4.14 refresh rotation; and, when
configured, RFC 8693 token exchange (:mod:`.token_exchange`) and the RFC 7523 / ID-JAG
jwt-bearer grant (:mod:`.jwt_bearer`), which decide the token while this module mints it.

The web layer parses the request, authenticates the client
(:func:`~.client_auth.authenticate_client`) and verifies the DPoP proof without claiming its
replay; :meth:`TokenService.exchange` does the rest and returns the RFC 6749 §5.1 response
body or raises an :class:`~.errors.OAuthError`.

Rules kept here:

- ``grant_type`` missing is ``invalid_request``; one the server does not serve is
  ``unsupported_grant_type``; one the client did not register is ``unauthorized_client``.
  A repeated parameter is ``invalid_request`` (RFC 6749 §3.2).
- ``client_credentials`` is for confidential clients only (§4.4); it issues no refresh token
  (§4.4.3). The subject is the client and the ``principal_kind`` claim says so (D10).
- Scope: the host's :class:`~.host.ScopePolicy` decides, and the grant never exceeds what
  was requested (when something was). A refresh narrows only (§6).
- ``resource`` (RFC 8707 §2): at most one distinct value (one audience per token, DESIGN.md
  rule 8), an absolute URI without fragment, on the allow-list (``invalid_target``). Without
  it the audience is the grant's resource, else the default resource, else the issuer (D11).
- DPoP (RFC 9449 §5): a verified proof yields ``token_type: DPoP`` and ``cnf.jkt``; a grant
  bound to a key (``dpop_jkt`` of a code, a bound refresh token) needs a proof of that key; a
  client registered with ``dpop_bound_access_tokens`` needs a proof. The proof's replay is
  claimed only once the grant verified (DESIGN.md rule 7).
- Token exchange answers ``issued_token_type`` and a ``token_type`` of ``Bearer`` or
  ``DPoP`` (never ``N_A``); neither it nor jwt-bearer issues a refresh token, and both bind
  the new token to the key of a bound input (DESIGN.md D9).
- A code is single use: a replay revokes the refresh family and denies the access tokens it
  produced (RFC 6749 §4.1.2, RFC 9700 §4.5). A refresh token rotates; a reused one revokes
  its family (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Required, TypedDict
from urllib.parse import urlsplit

from .binding import PresentedKeys
from .client_auth import AuthenticatedClient
from .clock import Clock
from .dpop import DPoPProof, claim_replay
from .errors import (
    InvalidDPoPProof,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from .host import ClaimsProvider, Event, EventName, PrincipalStore, ScopePolicy
from .idtoken import IDTokenClaims, IDTokenMinter
from .issuance import ClientResourcePolicy, DefaultRefreshTokenPolicy, RefreshTokenPolicy
from .jwt_bearer import GRANT_TYPE as JWT_BEARER
from .jwt_bearer import JWTBearerConfig, JWTBearerGrant, jwt_bearer_grant
from .pkce import verify as verify_pkce
from .scopes import ScopeCatalog, format_scope, is_scope_token, narrow, parse_scope
from .secret import constant_time_equals, generate_secret
from .stores import (
    CodeRefused,
    CodeReused,
    IssuedAccessToken,
    RefreshGrant,
    RefreshToken,
    ReuseDetected,
    Rotated,
    RotationRefused,
    RotationRetried,
    Stores,
)
from .token_exchange import ACCESS_TOKEN_TYPE, OwnAccessTokens, TokenExchangeConfig, exchange_token
from .token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from .tokens import AccessTokenClaims, AccessTokenMinter, MintedToken, new_jti

__all__ = [
    "EXTENSION_GRANT_TYPES",
    "GRANT_TYPES",
    "TokenPolicy",
    "TokenRequest",
    "TokenResponse",
    "TokenService",
]

GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
"""The grant types this module serves on its own."""
EXTENSION_GRANT_TYPES = (TOKEN_EXCHANGE, JWT_BEARER)
"""The grant types served when configured (token exchange, jwt-bearer)."""

_MAX_RESOURCE = 2048
ID_TOKEN_SERVER_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr"}
    | {"azp", "sid", "at_hash", "c_hash"}
)


class TokenResponse(TypedDict, total=False):
    """RFC 6749 §5.1 (and OIDC Core §3.1.3.3 ``id_token``)."""

    access_token: Required[str]
    token_type: Required[str]
    expires_in: Required[int]
    scope: str
    refresh_token: str
    id_token: str
    issued_token_type: str


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What the token endpoint serves. ``resources`` is the RFC 8707 allow-list (the default
    resource and the issuer are always allowed); ``refresh_grace`` is 0 without the
    successor secret (D12)."""

    issuer: str
    grant_types: frozenset[str] = frozenset(GRANT_TYPES)
    catalog: ScopeCatalog = field(default_factory=lambda: ScopeCatalog.of(()))
    resources: frozenset[str] = frozenset()
    default_resource: str | None = None
    access_token_ttl: int = 900
    refresh_token_ttl: int = 14 * 24 * 3600
    refresh_family_ttl: int = 90 * 24 * 3600
    refresh_grace: int = 0

    @property
    def allowed_resources(self) -> frozenset[str]:
        extra = {self.issuer} | ({self.default_resource} if self.default_resource else set())
        return self.resources | extra


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """An authenticated token request: the body parameters (each name with all its values),
    the client, and the verified (not yet replay-claimed) DPoP proof if one was sent."""

    form: Mapping[str, Sequence[str]]
    client: AuthenticatedClient
    dpop: DPoPProof | None = None
    certificate_thumbprint: str | None = None
    """``x5t#S256`` of the client certificate presented over mutual TLS (RFC 8705 §3)."""


def single(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The one value of ``name`` (``None``: absent or empty); repeated is ``invalid_request``
    (RFC 6749 §3.2)."""
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"the {name} parameter is repeated", reason="repeated_parameter")
    return values[0] or None


def _required(form: Mapping[str, Sequence[str]], name: str) -> str:
    value = single(form, name)
    if value is None:
        raise InvalidRequest(f"the {name} parameter is required", reason=f"missing_{name}")
    return value


def _valid_resource(value: str) -> bool:
    if len(value) > _MAX_RESOURCE or "#" in value:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc) or (bool(parts.scheme) and ":" in value)


class TokenService:
    """The grants of the token endpoint, bound to their policy, minters and host policy."""

    def __init__(
        self,
        policy: TokenPolicy,
        *,
        minter: AccessTokenMinter,
        scope_policy: ScopePolicy,
        clock: Clock,
        emit: Callable[[Event], None],
        principal_store: PrincipalStore | None = None,
        id_token_minter: IDTokenMinter | None = None,
        claims_provider: ClaimsProvider | None = None,
        token_exchange: TokenExchangeConfig | None = None,
        jwt_bearer: JWTBearerConfig | None = None,
        refresh_policy: RefreshTokenPolicy | None = None,
        client_resource_policy: ClientResourcePolicy | None = None,
    ) -> None:
        self._refresh_policy = refresh_policy or DefaultRefreshTokenPolicy()
        self._client_resource_policy = client_resource_policy
        self._claims = claims_provider
        self._token_exchange = token_exchange
        self._jwt_bearer = jwt_bearer
        self.policy = policy
        self._minter = minter
        self._scope_policy = scope_policy
        self._clock = clock
        self._emit = emit
        self._principals = principal_store
        self._id_tokens = id_token_minter

    # -- entry point ----------------------------------------------------------------------

    def exchange(self, request: TokenRequest, stores: Stores) -> TokenResponse:
        """Run the requested grant; the response body, or an :class:`OAuthError`."""
        grant_type = None
        try:
            grant_type = _required(request.form, "grant_type")
            self._check_grant_type(grant_type, request.client)
            if grant_type == "client_credentials":
                return self._client_credentials(request, stores)
            if grant_type == "authorization_code":
                return self._authorization_code(request, stores)
            if grant_type == TOKEN_EXCHANGE:
                return self._exchange_token(request, stores)
            if grant_type == JWT_BEARER:
                return self._assertion(request, stores)
            return self._refresh_token(request, stores)
        except OAuthError as error:
            self._event(
                "token_denied",
                request,
                grant_type=grant_type,
                result="failure",
                reason=error.reason or error.error,
            )
            raise

    def _serves(self, grant_type: str) -> bool:
        if grant_type == TOKEN_EXCHANGE:
            return self._token_exchange is not None
        if grant_type == JWT_BEARER:
            return self._jwt_bearer is not None
        return grant_type in GRANT_TYPES

    def _check_grant_type(self, grant_type: str, client: AuthenticatedClient) -> None:
        if not self._serves(grant_type) or grant_type not in self.policy.grant_types:
            raise UnsupportedGrantType(
                "the grant type is not supported", reason="unsupported_grant_type"
            )
        if grant_type not in client.client.grant_types:
            raise UnauthorizedClient(
                "the client is not registered for this grant type", reason="grant_not_registered"
            )

    # -- pieces ---------------------------------------------------------------------------

    def _event(
        self,
        name: EventName,
        request: TokenRequest,
        *,
        grant_type: str | None,
        subject: str | None = None,
        scope: str | None = None,
        result: str = "success",
        reason: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        self._emit(
            Event(
                name,
                client_id=request.client.client_id,
                subject=subject,
                grant_type=grant_type,
                scope=scope,
                result="failure" if result == "failure" else "success",
                reason=reason,
                metadata=dict(metadata or {}),
            )
        )

    def _requested_scope(self, request: TokenRequest) -> tuple[str, ...]:
        return parse_scope(single(request.form, "scope"))

    def _grant_scope(
        self, request: TokenRequest, requested: tuple[str, ...], subject: str | None
    ) -> tuple[str, ...]:
        granted = tuple(
            self._scope_policy.authorize_scope(request.client.client, requested, subject=subject)
        )
        if not all(isinstance(s, str) and is_scope_token(s) for s in granted):
            raise InvalidScope("the scope policy returned a malformed scope", reason="policy")
        if requested and not set(granted) <= set(requested):
            raise InvalidScope("the scope policy granted more than requested", reason="policy")
        return tuple(dict.fromkeys(granted))

    def _resource(self, request: TokenRequest, granted: tuple[str, ...] = ()) -> str:
        """The audience of the access token (RFC 8707 §2, D11); a resource indicator (sent or
        carried by the grant) must also be allowed to this client by the host's
        :class:`~.issuance.ClientResourcePolicy`."""
        resource = self._indicated_resource(request.form, granted)
        if resource is None:
            return self.policy.default_resource or self.policy.issuer
        policy = self._client_resource_policy
        if (
            policy is not None
            and policy.allow_resource(request.client.client, resource) is not True
        ):
            raise InvalidTarget(
                "the client may not obtain tokens for this resource",
                reason="resource_not_allowed",
            )
        return resource

    def _indicated_resource(
        self, form: Mapping[str, Sequence[str]], granted: tuple[str, ...]
    ) -> str | None:
        values = tuple(dict.fromkeys(form.get("resource") or ()))
        if len(values) > 1:
            raise InvalidTarget(
                "only one resource per token request is supported", reason="multiple_resources"
            )
        if values:
            resource = values[0]
            if not _valid_resource(resource):
                raise InvalidTarget(
                    "resource must be an absolute URI without fragment", reason="malformed"
                )
            if granted and resource not in granted:
                raise InvalidTarget(
                    "resource was not part of the grant", reason="resource_not_granted"
                )
            if not granted and resource not in self.policy.allowed_resources:
                raise InvalidTarget("resource is not served here", reason="unknown_resource")
            return resource
        if len(granted) == 1:
            return granted[0]
        return None

    def _dpop(self, request: TokenRequest, bound_jkt: str | None) -> DPoPProof | None:
        proof = request.dpop
        client = request.client.client
        if proof is None:
            if bound_jkt is not None:
                raise InvalidDPoPProof(
                    "this grant is bound to a DPoP key: send a proof", reason="missing"
                )
            if client.dpop_bound_access_tokens:
                raise InvalidDPoPProof("this client must use DPoP", reason="missing")
            return None
        if bound_jkt is not None and proof.jkt != bound_jkt:
            raise InvalidDPoPProof(
                "the DPoP key is not the key the grant is bound to", reason="jkt_mismatch"
            )
        return proof

    def _claim(self, proof: DPoPProof | None, stores: Stores) -> None:
        # DESIGN.md rule 7: only after the grant verified.
        if proof is not None:
            claim_replay(proof, stores.replay)

    def _mint(
        self,
        request: TokenRequest,
        *,
        subject: str,
        kind: str,
        scopes: tuple[str, ...],
        audience: str,
        proof: DPoPProof | None,
        auth_time: int | None = None,
        acr: str | None = None,
    ) -> MintedToken:
        return self._minter.mint(
            AccessTokenClaims(
                subject=subject,
                client_id=request.client.client_id,
                audience=audience,
                scopes=scopes,
                cnf=self._cnf(request, proof),
                auth_time=auth_time,
                acr=acr,
                principal_kind=kind,
            ),
            lifetime=self.policy.access_token_ttl,
        )

    def _cnf(self, request: TokenRequest, proof: DPoPProof | None) -> dict[str, str] | None:
        """RFC 9449 §6.1 ``jkt`` for a DPoP request; otherwise RFC 8705 §3.1 ``x5t#S256``
        for a client registered for certificate-bound tokens that presented a certificate."""
        if proof is not None:
            return {"jkt": proof.jkt}
        client = request.client.client
        if client.tls_client_certificate_bound_access_tokens:
            if request.certificate_thumbprint is None:
                raise InvalidRequest(
                    "this client's tokens are bound to its TLS client certificate: present one",
                    reason="certificate_missing",
                )
            return {"x5t#S256": request.certificate_thumbprint}
        return None

    def _response(
        self, token: MintedToken, scopes: tuple[str, ...], proof: DPoPProof | None
    ) -> TokenResponse:
        body: TokenResponse = {
            "access_token": token.token,
            "token_type": "DPoP" if proof is not None else "Bearer",
            "expires_in": token.expires_in,
        }
        if scopes:
            body["scope"] = format_scope(scopes)
        return body

    def _metadata(
        self, token: MintedToken, proof: DPoPProof | None, request: TokenRequest
    ) -> dict[str, object]:
        constraint = "dpop" if proof is not None else None
        if proof is None and request.client.client.tls_client_certificate_bound_access_tokens:
            constraint = "mtls"
        return {
            "jti": token.jti,
            "token_type": "DPoP" if proof is not None else "Bearer",
            "sender_constraint": constraint,
        }

    # -- client_credentials (RFC 6749 §4.4) -----------------------------------------------

    def _client_credentials(self, request: TokenRequest, stores: Stores) -> TokenResponse:
        if request.client.client.public:
            raise UnauthorizedClient(
                "client_credentials is for confidential clients only", reason="public_client"
            )
        scopes = self._grant_scope(request, self._requested_scope(request), None)
        audience = self._resource(request)
        proof = self._dpop(request, None)
        self._claim(proof, stores)
        token = self._mint(
            request,
            subject=request.client.client_id,
            kind="client",
            scopes=scopes,
            audience=audience,
            proof=proof,
        )
        self._event(
            "token_issued",
            request,
            grant_type="client_credentials",
            subject=request.client.client_id,
            scope=format_scope(scopes),
            metadata=self._metadata(token, proof, request),
        )
        return self._response(token, scopes, proof)

    # -- authorization_code (RFC 6749 §4.1.3) ---------------------------------------------

    def _authorization_code(self, request: TokenRequest, stores: Stores) -> TokenResponse:
        form = request.form
        code = _required(form, "code")
        redirect_uri = single(form, "redirect_uri")
        verifier = single(form, "code_verifier")
        taken = stores.codes.take(code)
        if isinstance(taken, CodeRefused):
            raise InvalidGrant("the authorization code is invalid or expired", reason=taken.reason)
        if isinstance(taken, CodeReused):
            if taken.family_id is not None:
                stores.refresh_tokens.revoke_family(taken.family_id)
            for issued in taken.access_tokens:
                stores.revoked_access_tokens.add(issued.jti, issued.expires_at)
            self._event(
                "code_reuse_detected",
                request,
                grant_type="authorization_code",
                subject=taken.subject,
                result="failure",
                reason="code_reused",
                metadata={"family_id": taken.family_id},
            )
            raise InvalidGrant("the authorization code was already used", reason="code_reused")
        entry = taken.entry
        if entry.client_id != request.client.client_id:
            raise InvalidGrant("the code was issued to another client", reason="client_mismatch")
        # RFC 6749 §4.1.3: identical to the authorization request's redirect_uri.
        sent_in_request = entry.extra.get("redirect_uri_in_request", True) is not False
        if redirect_uri is None and sent_in_request:
            raise InvalidGrant("redirect_uri is required", reason="redirect_uri_missing")
        if redirect_uri is not None and redirect_uri != entry.redirect_uri:
            raise InvalidGrant("redirect_uri does not match", reason="redirect_uri_mismatch")
        verify_pkce(verifier, entry.code_challenge)
        self._check_principal(entry.subject)
        audience = self._resource(request, entry.resource)
        proof = self._dpop(request, entry.dpop_jkt)
        self._claim(proof, stores)
        token = self._mint(
            request,
            subject=entry.subject,
            kind="user",
            scopes=entry.scope,
            audience=audience,
            proof=proof,
            auth_time=entry.auth_time,
            acr=entry.acr,
        )
        body = self._response(token, entry.scope, proof)
        family_id = None
        if self._issues_refresh(request, entry.scope, entry.subject):
            grant = RefreshGrant(
                client_id=request.client.client_id,
                subject=entry.subject,
                scope=entry.scope,
                resource=entry.resource or (audience,),
                dpop_jkt=self._refresh_binding(request, proof),
                x5t_s256=self._refresh_certificate(request, proof),
                auth_time=entry.auth_time,
                acr=entry.acr,
            )
            family_id, refresh = self._new_family(grant, stores)
            body["refresh_token"] = refresh
        if "openid" in entry.scope and self._id_tokens is not None:
            extra: dict[str, object] = {}
            if self._claims is not None:
                extra = dict(
                    self._claims.id_token_claims(
                        request.client.client, entry.subject, entry.scope, {}
                    )
                )
                for name in ID_TOKEN_SERVER_CLAIMS & set(extra):
                    del extra[name]  # the server's claims are never the host's to set
            id_token = self._id_tokens.mint(
                IDTokenClaims(
                    subject=entry.subject,
                    client_id=request.client.client_id,
                    auth_time=entry.auth_time,
                    nonce=entry.nonce,
                    acr=entry.acr,
                    access_token=token.token,
                    extra=extra,
                ),
                alg=request.client.client.id_token_signed_response_alg,  # type: ignore[arg-type]
            )
            body["id_token"] = id_token.token
        stores.codes.finalize(
            code,
            family_id=family_id,
            access_tokens=(IssuedAccessToken(token.jti, token.expires_at),),
        )
        self._event(
            "token_issued",
            request,
            grant_type="authorization_code",
            subject=entry.subject,
            scope=format_scope(entry.scope),
            metadata={**self._metadata(token, proof, request), "family_id": family_id},
        )
        return body

    def _check_principal(self, subject: str) -> None:
        if self._principals is None:
            return
        principal = self._principals.load_principal(subject)
        if principal is None or not principal.active:
            raise InvalidGrant("the resource owner is no longer active", reason="principal")

    def _issues_refresh(self, request: TokenRequest, scopes: tuple[str, ...], subject: str) -> bool:
        # The host decides (default: registered for refresh_token, or offline_access granted).
        if "refresh_token" not in self.policy.grant_types:
            return False
        return (
            self._refresh_policy.issue_refresh_token(
                request.client.client, scopes, subject=subject, grant_type="authorization_code"
            )
            is True
        )

    @staticmethod
    def _refresh_certificate(request: TokenRequest, proof: DPoPProof | None) -> str | None:
        # RFC 8705 §4: a public client's refresh token is bound to the certificate its access
        # token is bound to (_cnf). A confidential client's is bound to its client
        # authentication (RFC 6749 §6, RFC 8705 §7.1), so it carries no certificate binding.
        client = request.client.client
        if proof is None and client.public and client.tls_client_certificate_bound_access_tokens:
            return request.certificate_thumbprint
        return None

    @staticmethod
    def _check_certificate(request: TokenRequest, bound: str | None) -> None:
        """RFC 8705 §4: a refresh token bound to a certificate is accepted only over a mutual
        TLS connection made with that certificate."""
        if bound is None:
            return
        presented = request.certificate_thumbprint
        if presented is None:
            raise InvalidGrant(
                "the refresh token is bound to a TLS client certificate: present it",
                reason="certificate_missing",
            )
        if not constant_time_equals(presented, bound):
            raise InvalidGrant(
                "the refresh token is bound to another TLS client certificate",
                reason="certificate_mismatch",
            )

    def _refresh_binding(self, request: TokenRequest, proof: DPoPProof | None) -> str | None:
        # RFC 9449 §5: refresh tokens of public clients are bound to the DPoP key.
        if proof is not None and request.client.client.public:
            return proof.jkt
        return None

    def _new_family(self, grant: RefreshGrant, stores: Stores) -> tuple[str, str]:
        now = int(self._clock.now())
        family_id = new_jti()
        refresh = generate_secret()
        family_expires_at = now + self.policy.refresh_family_ttl
        entry = RefreshToken(
            family_id=family_id,
            generation=0,
            grant=grant,
            issued_at=now,
            expires_at=min(now + self.policy.refresh_token_ttl, family_expires_at),
            family_expires_at=family_expires_at,
        )
        if not stores.refresh_tokens.put(refresh, entry):
            raise InvalidGrant("the refresh token could not be stored", reason="family_exists")
        return family_id, refresh

    # -- token exchange (RFC 8693) and jwt-bearer (RFC 7523, ID-JAG) ----------------------

    @staticmethod
    def _presented(request: TokenRequest) -> PresentedKeys:
        return PresentedKeys(
            dpop_jkt=request.dpop.jkt if request.dpop is not None else None,
            certificate_thumbprint=request.certificate_thumbprint,
        )

    def _exchange_token(self, request: TokenRequest, stores: Stores) -> TokenResponse:
        config = self._token_exchange
        assert config is not None  # _check_grant_type
        own = config.validators.get(ACCESS_TOKEN_TYPE)
        if isinstance(own, OwnAccessTokens):
            # A revoked access token is never exchanged (the denylist of D12).
            validators = {
                **config.validators,
                ACCESS_TOKEN_TYPE: own.with_denylist(stores.revoked_access_tokens),
            }
            config = TokenExchangeConfig(
                issuer=config.issuer,
                validators=validators,
                catalog=config.catalog,
                policy=config.policy,
            )
        grant = exchange_token(
            request.form,
            request.client.client,
            config,
            presented=self._presented(request),
            clock=self._clock,
        )
        if grant.claims.principal_kind == "user":
            self._check_principal(grant.claims.subject)
        self._claim(request.dpop, stores)
        lifetime = self.policy.access_token_ttl
        if grant.max_lifetime is not None:
            lifetime = min(lifetime, grant.max_lifetime)
        return self._issue_claims(
            request,
            TOKEN_EXCHANGE,
            grant.claims,
            token_type=grant.token_type,
            lifetime=lifetime,
            issued_token_type=grant.issued_token_type,
            metadata={"actor": grant.actor.subject if grant.actor is not None else None},
        )

    def _assertion(self, request: TokenRequest, stores: Stores) -> TokenResponse:
        config = self._jwt_bearer
        assert config is not None  # _check_grant_type
        grant: JWTBearerGrant = jwt_bearer_grant(
            request.form,
            request.client.client,
            config,
            presented=self._presented(request),
            replay=stores.replay,
            clock=self._clock,
        )
        self._check_principal(grant.claims.subject)
        self._claim(request.dpop, stores)
        return self._issue_claims(
            request,
            JWT_BEARER,
            grant.claims,
            token_type=grant.token_type,
            lifetime=self.policy.access_token_ttl,
            metadata={
                "assertion_issuer": grant.assertion.issuer,
                "profile": grant.assertion.profile,
            },
        )

    def _issue_claims(
        self,
        request: TokenRequest,
        grant_type: str,
        claims: AccessTokenClaims,
        *,
        token_type: str,
        lifetime: int,
        metadata: Mapping[str, object],
        issued_token_type: str | None = None,
    ) -> TokenResponse:
        """Mint the access token of a grant that built its own claims (token exchange,
        jwt-bearer: no refresh token), emit ``token_issued`` and return the response body."""
        token = self._minter.mint(claims, lifetime=lifetime)
        body: TokenResponse = {
            "access_token": token.token,
            "token_type": token_type,
            "expires_in": token.expires_in,
        }
        if issued_token_type is not None:
            body["issued_token_type"] = issued_token_type  # RFC 8693 §2.2.1
        if claims.scopes:
            body["scope"] = format_scope(claims.scopes)
        cnf = claims.cnf or {}
        constraint = "dpop" if "jkt" in cnf else "mtls" if "x5t#S256" in cnf else None
        self._event(
            "token_issued",
            request,
            grant_type=grant_type,
            subject=claims.subject,
            scope=format_scope(claims.scopes),
            metadata={
                "jti": token.jti,
                "token_type": "DPoP" if constraint == "dpop" else "Bearer",
                "sender_constraint": constraint,
                **metadata,
            },
        )
        return body

    # -- refresh_token (RFC 6749 §6) ------------------------------------------------------

    def _refresh_token(self, request: TokenRequest, stores: Stores) -> TokenResponse:
        form = request.form
        presented = _required(form, "refresh_token")
        requested = self._requested_scope(request)
        entry = stores.refresh_tokens.get(presented)
        if entry is None:
            raise InvalidGrant("the refresh token is invalid or expired", reason="unknown")
        grant = entry.grant
        if grant.client_id != request.client.client_id:
            raise InvalidGrant("the refresh token belongs to another client", reason="client")
        scopes = narrow(grant.scope, requested or None, self.policy.catalog)
        audience = self._resource(request, grant.resource)
        self._check_principal(grant.subject)
        self._check_certificate(request, grant.x5t_s256)
        proof = self._dpop(request, grant.dpop_jkt)
        self._claim(proof, stores)
        now = int(self._clock.now())
        successor = generate_secret()
        result = stores.refresh_tokens.rotate(
            presented,
            successor,
            expires_at=now + self.policy.refresh_token_ttl,
            grace=self.policy.refresh_grace,
        )
        if isinstance(result, ReuseDetected):
            self._event(
                "refresh_reuse_detected",
                request,
                grant_type="refresh_token",
                subject=grant.subject,
                result="failure",
                reason="reuse",
                metadata={"family_id": result.family_id},
            )
            raise InvalidGrant("the refresh token was already used", reason="refresh_reused")
        if isinstance(result, RotationRefused):
            raise InvalidGrant("the refresh token is invalid or expired", reason=result.reason)
        if isinstance(result, RotationRetried):
            successor = result.token
        assert isinstance(result, Rotated | RotationRetried)
        token = self._mint(
            request,
            subject=grant.subject,
            kind="user",
            scopes=scopes,
            audience=audience,
            proof=proof,
            auth_time=grant.auth_time,
            acr=grant.acr,
        )
        body = self._response(token, scopes, proof)
        body["refresh_token"] = successor
        self._event(
            "refresh_rotated",
            request,
            grant_type="refresh_token",
            subject=grant.subject,
            scope=format_scope(scopes),
            metadata={**self._metadata(token, proof, request), "family_id": entry.family_id},
        )
        return body
