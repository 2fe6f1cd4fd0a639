"""The resource-server security policy: access tokens into ``request.identity``, permissions
as scopes, and denials that carry their OAuth challenge.

DESIGN.md D1: :class:`AttestoSecurityPolicy` decides only for requests that carry an OAuth
credential (``Authorization: Bearer`` / ``DPoP``, a form-body token where enabled, or what the
host's extractor finds) and delegates everything else to an optional ``fallback`` — the host's
own policy — so its cookie login and ACL permissions (``view``, ``edit``) keep working;
``remember`` and ``forget`` always delegate. On an OAuth request a permission is a required
scope (DESIGN.md rule 9, :meth:`~pyramid_attesto.core.scopes.GrantedScopes.covers`).

A request without an OAuth credential is denied with a challenge (RFC 6750 §3.1, no
``error``) when there is no fallback, when the fallback denies a permission that is a scope of
the catalog (``attesto.scopes_supported``), or on a view with ``attesto_scopes``; the fallback's
own denial (a redirect to its login page) stands everywhere else.

The token is verified once per request (the outcome is cached in the WSGI environ), and the
events :class:`AuthSucceeded` / :class:`AuthDenied` are sent through ``registry.notify`` with
the reason, client and subject — never the token.

Composition by hand::

    config.set_security_policy(AttestoSecurityPolicy(fallback=MyCookiePolicy()))
    config.include("pyramid_attesto.resource")

``config.include("pyramid_attesto.resource")`` does the same on its own: it installs the
policy and wraps a host policy it finds as the fallback (``attesto.install_policy = false``
turns that off).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

from pyramid.security import Allowed

from .challenges import AttestoDenied, ChallengeOptions, Scheme
from .core.clock import Clock
from .core.errors import InsufficientScope, InvalidRequest, OAuthError
from .core.resource import (
    Credential,
    Refusal,
    ResourceRequest,
    ResourceVerifier,
    VerifiedAccess,
    check_authentication,
    check_scopes,
    parse_authorization,
)
from .core.scopes import ScopeCatalog, is_scope_token
from .identity import AttestoIdentity, PrincipalLoader
from .request import RequestAdapter

if TYPE_CHECKING:
    from pyramid.registry import Registry

__all__ = [
    "RESOURCE_SERVER_KEY",
    "AttestoSecurityPolicy",
    "AuthDenied",
    "AuthSucceeded",
    "CookieTokenExtractor",
    "ResourceServer",
    "TokenExtractor",
    "resource_server",
]

RESOURCE_SERVER_KEY: Final = "attesto.resource_server"
_ENVIRON_KEY: Final = "attesto.auth"
_NO_CREDENTIAL: Final = object()

Request = Any  # pyramid.request.Request: untyped, converted on the first line of each method
TokenExtractor = Callable[[Request], "tuple[str, str] | None"]
"""``extractor(request) -> (scheme, token) | None``: an access token the host finds elsewhere
(a cookie, a custom header). ``scheme`` is ``"Bearer"`` or ``"DPoP"``."""


class CookieTokenExtractor:
    """A :data:`TokenExtractor` reading a Bearer token from a cookie (DESIGN.md D17).

    A cookie travels with cross-site requests, so on an unsafe method (anything but ``GET``,
    ``HEAD``, ``OPTIONS``) the token is used only when the request's ``Origin`` is one of
    ``allowed_origins`` — otherwise the request is treated as carrying no token. Configure it
    through a module attribute::

        # myapp/auth.py
        extract_token = CookieTokenExtractor("access_token", ["https://app.example.com"])

        # settings
        attesto.token_extractor = myapp.auth:extract_token
    """

    __slots__ = ("allowed_origins", "name")

    def __init__(self, name: str, allowed_origins: Sequence[str] = ()) -> None:
        self.name = name
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    def __call__(self, request: Request) -> tuple[str, str] | None:
        token = request.cookies.get(self.name)
        if not token:
            return None
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.environ.get("HTTP_ORIGIN", "").rstrip("/").lower()
            if origin not in self.allowed_origins:
                return None
        return ("Bearer", token)


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthSucceeded:
    """An access token verified (sent once per request through ``registry.notify``)."""

    request: Request = field(repr=False)  # its URL may hold a (refused) query-string token
    subject: str
    client_id: str | None
    scheme: Scheme
    name: str = "auth_succeeded"


@dataclass(frozen=True, slots=True)
class AuthDenied:
    """A request was refused by the resource server.

    ``reason`` is a short machine word (``no_credentials``, ``expired``, ``jkt_mismatch``,
    ``insufficient_scope``, ...); ``error`` the OAuth error code (``None`` without
    credentials); ``subject`` and ``client_id`` are known when the token itself verified.
    """

    request: Request = field(repr=False)
    reason: str
    error: str | None
    subject: str | None = None
    client_id: str | None = None
    name: str = "auth_denied"


# -- the resource server of one application ----------------------------------------------------


class ResourceServer:
    """The resource server of one application: verification, request adaptation and the
    shape of its challenges. Built by :mod:`pyramid_attesto.resource` from the settings."""

    def __init__(
        self,
        *,
        verifier: ResourceVerifier,
        adapter: RequestAdapter,
        resources: Sequence[str],
        metadata_urls: Mapping[str, str],
        challenge_options: ChallengeOptions,
        clock: Clock,
        catalog: ScopeCatalog | None = None,
        body_tokens: bool = False,
        extractor: TokenExtractor | None = None,
        principal_loader: PrincipalLoader | None = None,
        metadata_documents: Mapping[str, bytes] | None = None,
    ) -> None:
        if not resources:
            raise ValueError("a resource server needs at least one resource URI")
        self.verifier = verifier
        self.adapter = adapter
        self.resources = tuple(resources)
        self.metadata_urls = dict(metadata_urls)
        self.challenge_options = challenge_options
        self.clock = clock
        self.catalog = catalog
        self.body_tokens = body_tokens
        self.extractor = extractor
        self.principal_loader = principal_loader
        self.metadata_documents: Mapping[str, bytes] = dict(metadata_documents or {})
        """RFC 9728 documents (JSON bytes) by resource path (``""`` for the bare URL)."""
        # Longest resource first, so /api/v2 wins over /api for the challenge's metadata URL.
        self._by_length = sorted(self.resources, key=len, reverse=True)

    # -- credentials ---------------------------------------------------------------------

    def credential(self, request: Request) -> Credential | None:
        """The OAuth credential of ``request``; ``None`` when it carries none.

        :class:`~pyramid_attesto.core.errors.InvalidRequest` for a malformed field, a token
        in the query string (never accepted, RFC 9700 §4.3.2) or a token sent two ways at
        once (RFC 6750 §2).
        """
        environ = request.environ
        credential: Credential | None = None
        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            credential = parse_authorization(header)
        query = environ.get("QUERY_STRING")
        if query and "access_token" in query and _has_param(query, "access_token"):
            raise InvalidRequest(
                "access tokens are not accepted in the query string", reason="query_token"
            )
        if self.body_tokens:
            body = self._body_credential(request)
            if body is not None:
                if credential is not None:
                    raise InvalidRequest(
                        "the access token was sent in more than one way", reason="two_methods"
                    )
                credential = body
        if credential is None and self.extractor is not None:
            credential = self._extracted(request)
        return credential

    def _body_credential(self, request: Request) -> Credential | None:
        """RFC 6750 §2.2: a form-encoded, non-GET body with one ``access_token``."""
        if request.method in ("GET", "HEAD"):
            return None
        if request.content_type != "application/x-www-form-urlencoded":
            return None
        values = request.POST.getall("access_token")
        if not values:
            return None
        if len(values) > 1:
            raise InvalidRequest("access_token is repeated", reason="repeated_token")
        parsed = parse_authorization(f"Bearer {values[0]}")
        return None if parsed is None else Credential("Bearer", parsed.token, "body")

    def _extracted(self, request: Request) -> Credential | None:
        assert self.extractor is not None
        found = self.extractor(request)
        if found is None:
            return None
        scheme, token = found
        parsed = parse_authorization(f"{scheme} {token}")
        if parsed is None:
            raise InvalidRequest("unsupported authorization scheme", reason="bad_scheme")
        return Credential(parsed.scheme, parsed.token, "extractor")

    # -- authentication --------------------------------------------------------------------

    def authenticate(self, request: Request) -> object:
        """The outcome for this request, computed once: an :class:`AttestoIdentity`, a
        :class:`~pyramid_attesto.core.resource.Refusal`, or the no-credential marker."""
        environ = request.environ
        outcome = environ.get(_ENVIRON_KEY)
        if outcome is None:
            outcome = self._authenticate(request)
            environ[_ENVIRON_KEY] = outcome
        return outcome

    def _authenticate(self, request: Request) -> object:
        try:
            credential = self.credential(request)
        except InvalidRequest as error:
            header = request.environ.get("HTTP_AUTHORIZATION", "")
            scheme: Scheme = "DPoP" if header.lstrip()[:5].lower() == "dpop " else "Bearer"
            refusal = Refusal(error, scheme)
            self._notify_denied(request, refusal.error)
            return refusal
        if credential is None:
            return _NO_CREDENTIAL
        environ = request.environ
        dpop = environ.get("HTTP_DPOP")
        adapter = self.adapter

        result = self.verifier.verify(
            ResourceRequest(
                method=request.method,
                url=lambda: adapter.canonical_url(environ),
                credential=credential,
                dpop=(dpop,) if dpop is not None else (),
                certificate=lambda: adapter.presented_certificate(environ),
            )
        )
        if isinstance(result, Refusal):
            self._notify_denied(request, result.error)
            return result
        identity = self._identity(result)
        registry = request.registry
        if registry.has_listeners:
            registry.notify(
                AuthSucceeded(request, identity.subject, identity.client_id, result.scheme)
            )
        return identity

    def _identity(self, access: VerifiedAccess) -> AttestoIdentity:
        token = access.token
        return AttestoIdentity(
            subject=token.subject,
            kind=token.principal_kind,
            client_id=token.client_id,
            scopes=token.scopes,
            claims=token.claims,
            cnf=token.cnf,
            token_type=access.scheme,
            principal_loader=self.principal_loader,
        )

    # -- decisions -----------------------------------------------------------------------

    def metadata_url(self, request: Request) -> str | None:
        """The protected-resource metadata URL of the resource ``request`` addresses."""
        if len(self.resources) == 1:
            return self.metadata_urls.get(self.resources[0])
        url = self.adapter.canonical_url(request.environ)
        for resource in self._by_length:
            if url == resource or url.startswith(resource.rstrip("/") + "/"):
                return self.metadata_urls.get(resource)
        return self.metadata_urls.get(self.resources[0])

    def deny(
        self,
        request: Request,
        error: OAuthError | None,
        scheme: Scheme | None,
        *,
        required: Sequence[str] = (),
        acr_values: Sequence[str] = (),
        max_age: int | None = None,
        notify: bool = True,
    ) -> AttestoDenied:
        """An :class:`~pyramid_attesto.challenges.AttestoDenied` for ``request``."""
        if notify:
            identity = request.environ.get(_ENVIRON_KEY)
            self._notify_denied(
                request, error, identity if isinstance(identity, AttestoIdentity) else None
            )
        return AttestoDenied(
            error,
            scheme=scheme,
            required_scopes=required,
            acr_values=acr_values,
            max_age=max_age,
            resource_metadata=self.metadata_url(request),
        )

    def check(
        self,
        request: Request,
        required: Sequence[str] = (),
        *,
        acr_values: Sequence[str] = (),
        max_age: int | None = None,
    ) -> Allowed | AttestoDenied:
        """Whether the request's token grants every ``required`` scope and meets the
        step-up requirement (RFC 9470); a denial carrying its challenge otherwise."""
        outcome = self.authenticate(request)
        if outcome is _NO_CREDENTIAL:
            return self.deny(request, None, None, required=required)
        if isinstance(outcome, Refusal):
            return self.deny(
                request, outcome.error, outcome.scheme, required=required, notify=False
            )
        assert isinstance(outcome, AttestoIdentity)
        if required and not _held(outcome.scopes, required):
            missing = check_scopes(outcome.granted, required, self.catalog)
            if missing is not None:
                return self.deny(request, missing, outcome.token_type, required=required)
        if acr_values or max_age is not None:
            weak = check_authentication(
                outcome.claims, acr_values=acr_values, max_age=max_age, now=self.clock.now()
            )
            if weak is not None:
                return self.deny(
                    request,
                    weak,
                    outcome.token_type,
                    required=required,
                    acr_values=acr_values,
                    max_age=max_age,
                )
        return _ALLOWED

    def is_scope(self, permission: str) -> bool:
        """Whether ``permission`` names a scope of the catalog (an OAuth permission)."""
        return self.catalog is not None and permission in self.catalog

    def _notify_denied(
        self, request: Request, error: OAuthError | None, identity: AttestoIdentity | None = None
    ) -> None:
        registry = request.registry
        if not registry.has_listeners:
            return
        reason = "no_credentials" if error is None else (error.reason or error.error)
        registry.notify(
            AuthDenied(
                request,
                reason,
                None if error is None else error.error,
                identity.subject if identity is not None else None,
                identity.client_id if identity is not None else None,
            )
        )


_ALLOWED: Final = Allowed("attesto: the access token grants what the view requires")


def _held(scopes: tuple[str, ...], required: Sequence[str]) -> bool:
    """The common case, without indexing the grant: every required scope is granted as is
    (a wildcard requirement, ending in ``*``, is never satisfied this way: rule 9)."""
    return all(scope in scopes and not scope.endswith("*") for scope in required)


def resource_server(registry: Registry) -> ResourceServer:
    """The :class:`ResourceServer` the include registered (a ``LookupError`` otherwise)."""
    server = registry.get(RESOURCE_SERVER_KEY)
    if server is None:
        raise LookupError('config.include("pyramid_attesto.resource") has not run')
    return server  # type: ignore[no-any-return]


def _has_param(query: str, name: str) -> bool:
    return any(key == name for key, _ in parse_qsl(query, keep_blank_values=True))


# -- the security policy --------------------------------------------------------------------


class AttestoSecurityPolicy:
    """A Pyramid security policy for OAuth-protected APIs (``ISecurityPolicy``).

    :param fallback: the host's own security policy, consulted for every request that
        carries no OAuth credential (and for ``remember`` / ``forget``).
    """

    def __init__(self, fallback: Any = None) -> None:
        if isinstance(fallback, AttestoSecurityPolicy):
            raise ValueError("an AttestoSecurityPolicy cannot fall back to another one")
        self.fallback = fallback

    def identity(self, request: Request) -> Any:
        """The :class:`~pyramid_attesto.identity.AttestoIdentity` of an OAuth request
        (``None`` when its token was refused), else the fallback's identity."""
        outcome = resource_server(request.registry).authenticate(request)
        if outcome is _NO_CREDENTIAL:
            return self.fallback.identity(request) if self.fallback is not None else None
        return outcome if isinstance(outcome, AttestoIdentity) else None

    def authenticated_userid(self, request: Request) -> Any:
        """The token's ``sub`` on an OAuth request, else the fallback's userid."""
        outcome = resource_server(request.registry).authenticate(request)
        if outcome is _NO_CREDENTIAL:
            if self.fallback is None:
                return None
            return self.fallback.authenticated_userid(request)
        return outcome.subject if isinstance(outcome, AttestoIdentity) else None

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        """On an OAuth request, whether the token grants ``permission`` as a scope."""
        server = resource_server(request.registry)
        outcome = server.authenticate(request)
        if outcome is _NO_CREDENTIAL and self.fallback is not None:
            result = self.fallback.permits(request, context, permission)
            if result or not server.is_scope(permission):
                return result
        if is_scope_token(permission):
            return server.check(request, (permission,))
        # A permission no token can hold (a space, a quote): never challenge with it.
        result = server.check(request)
        if not result:
            return result
        assert isinstance(outcome, AttestoIdentity)
        error = InsufficientScope("no access token grants this permission", reason="not_a_scope")
        return server.deny(request, error, outcome.token_type)

    def remember(self, request: Request, userid: Any, **kw: Any) -> list[tuple[str, str]]:
        """Delegated to the fallback (an access token is not remembered)."""
        if self.fallback is None:
            return []
        return list(self.fallback.remember(request, userid, **kw))

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        """Delegated to the fallback."""
        if self.fallback is None:
            return []
        return list(self.fallback.forget(request, **kw))
