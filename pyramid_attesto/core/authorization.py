"""Authorization request validation, shared by the authorization endpoint and PAR.

Implements RFC 6749 §3.1 (no repeated parameters; an empty parameter is an omitted one),
§3.1.2.3 and §4.1.1 (``response_type``, ``client_id``, ``redirect_uri``, ``scope``,
``state``), §3.3 (default scope), §4.1.2.1 (which errors are redirected); RFC 7636 (PKCE,
S256 only, through :mod:`.pkce`); RFC 8707 §2 (``resource``); RFC 9449 §10 (``dpop_jkt``);
RFC 9101 (``request``, through :mod:`.request_objects`); RFC 9126 §2.1 and §4 (pushed
requests); RFC 9207 (``iss`` on every response); OpenID Connect Core 1.0 §3.1.2.1
(``nonce``, ``prompt``, ``max_age``, ``acr_values``, ``response_mode``, ``redirect_uri``
required) and §5.5 (``claims``); OAuth 2.0 Multiple Response Type Encoding Practices §2.1
and OAuth 2.0 Form Post Response Mode (``response_mode``); JARM §2.3 (the ``*.jwt`` modes).

The order of the checks is DESIGN.md rule 5. Until the client and the redirect URI are
known good, an error is a :class:`LocalAuthorizationError`: it is shown to the user on a
page and never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.11). That covers everything about
*who* is asking and *where the answer goes*:

1. ``client_id`` present once; the client is registered;
2. ``request_uri`` is not sent here (a pushed request is resolved first with
   :func:`parse_pushed_reference`), and a PAR body never carries one (RFC 9126 §2.1);
3. a ``request`` object verifies; only its parameters are used from then on (RFC 9101 §6.3,
   DESIGN.md D8), and its ``client_id`` is the outer one;
4. the client's signed-request and PAR requirements (RFC 9101 §10.5, RFC 9126 §6);
5. ``redirect_uri``: present once, registered (exact match, RFC 8252 loopback port
   exception for native clients); required when the client registered several or the
   request is an OpenID one (OIDC Core §3.1.2.1).

After that, errors are a :class:`RedirectableAuthorizationError` carrying the response
target (redirect URI, ``state``, response mode, ``iss``), so the wiring answers the client
at its redirect URI: response mode, ``state``, repeated parameters, ``response_type``,
``scope``, PKCE, ``resource``, then the OpenID parameters.

The result is a frozen :class:`AuthorizationRequest`. Its :meth:`~AuthorizationRequest.to_pending`
and :meth:`~AuthorizationRequest.from_pending` forms are what the PAR store keeps (DESIGN.md
D13): a pushed request, and an inline one while the user logs in and consents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, Literal, cast, get_args

from .clients import Client, ClientStore, JWKSProvider, inline_jwks
from .clock import Clock
from .encoding import b64url_decode
from .errors import (
    ConfigurationError,
    InvalidClient,
    InvalidRequest,
    InvalidRequestObject,
    InvalidRequestURI,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    RequestNotSupported,
    RequestURINotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from .jwt import loads_json
from .pkce import validate_challenge
from .redirect_uris import match_client_redirect_uri
from .request_objects import RequestObjectPolicy, RequestObjectVerifier
from .scopes import MAX_SCOPE_LENGTH, GrantedScopes, ScopeCatalog, parse_scope

__all__ = [
    "PAR_REQUEST_URI_PREFIX",
    "PROMPT_VALUES",
    "RESPONSE_MODES",
    "AuthorizationPolicy",
    "AuthorizationRequest",
    "AuthorizationRequestError",
    "AuthorizationRequestValidator",
    "LocalAuthorizationError",
    "PushedReference",
    "RedirectableAuthorizationError",
    "ResponseMode",
    "ResponseTarget",
    "parse_pushed_reference",
    "resolve_pushed_request",
]

ResponseMode = Literal[
    "query", "fragment", "form_post", "query.jwt", "fragment.jwt", "form_post.jwt"
]
"""A concrete response mode; ``jwt`` is resolved to ``query.jwt`` for the code flow (JARM
§2.3.4)."""

RESPONSE_MODES: frozenset[str] = frozenset({*get_args(ResponseMode), "jwt"})
"""Every ``response_mode`` value this module knows (the policy enables a subset)."""

PROMPT_VALUES: frozenset[str] = frozenset({"none", "login", "consent", "select_account", "create"})
"""OIDC Core §3.1.2.1 and OpenID Connect Prompt Create 1.0 (``create``)."""

PAR_REQUEST_URI_PREFIX: Final = "urn:ietf:params:oauth:request_uri:"
"""RFC 9126 §2.2: the form of the ``request_uri`` the PAR endpoint hands out."""

_PENDING_VERSION: Final = 1
_MAX_VALUE = 2048
_MAX_RESOURCES = 16
_MAX_AGE_DIGITS = 10
# RFC 6749 Appendix A: client_id, state are *VSCHAR / 1*VSCHAR.
_VSCHAR = re.compile(r"\A[\x20-\x7e]+\Z")
_SPACE_LIST = re.compile(r"\A[\x21-\x7e]+(?: [\x21-\x7e]+)*\Z")
_PAR_URN = re.compile(r"\Aurn:ietf:params:oauth:request_uri:[A-Za-z0-9_\-.~]{16,256}\Z")
_DIGITS = re.compile(r"\A[0-9]+\Z")

# RFC 8707 §2: the one parameter that may be repeated.
_REPEATABLE = frozenset({"resource"})
# RFC 6749 §3.1: unrecognized parameters are ignored, repeated or not.
_KNOWN_PARAMETERS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "response_mode",
        "nonce",
        "prompt",
        "max_age",
        "claims",
        "acr_values",
        "login_hint",
        "ui_locales",
        "code_challenge",
        "code_challenge_method",
        "dpop_jkt",
        "request",
        "request_uri",
    }
)
_LIMITS: Mapping[str, int] = {
    "request": 65536,
    "claims": 8192,
    "scope": MAX_SCOPE_LENGTH,
}
# RFC 9101 §9.1 / RFC 7519 §4.1: registered claims of a request object, not parameters.
_JWT_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})

Params = Mapping[str, Sequence[str]]
"""Request parameters: each name maps to every value it was sent with, in order."""


# -- response targets and errors ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseTarget:
    """Where and how an authorization response goes: the validated redirect URI, the
    response mode, the ``state`` to echo and the ``iss`` to add (RFC 9207 §2)."""

    issuer: str
    client_id: str
    redirect_uri: str
    response_mode: ResponseMode
    state: str | None


class AuthorizationRequestError(OAuthError):
    """An authorization request failed; :attr:`cause` is the protocol error, whose code,
    description and reason this error carries.

    The two subclasses say how the wiring delivers it. Both are :class:`OAuthError`, so a
    handler that knows neither renders it locally, which is always safe.
    """

    def __init__(self, cause: OAuthError, *, status: int | None = None) -> None:
        super().__init__(
            cause.description,
            reason=cause.reason,
            status=status if status is not None else cause.status,
            uri=cause.uri,
            headers=cause.headers,
        )
        self.cause = cause

    @property
    def error(self) -> str:  # type: ignore[override]  # the code of the wrapped error
        return self.cause.error

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cause!r})"


class LocalAuthorizationError(AuthorizationRequestError):
    """An error found before the client and its redirect URI were validated: render it to
    the user, never redirect (RFC 6749 §4.1.2.1, DESIGN.md rule 5).

    Rendered as a page its status is 400 (or the cause's 5xx): an HTML page has no
    ``WWW-Authenticate`` challenge to go with a 401.
    """

    def __init__(self, cause: OAuthError) -> None:
        super().__init__(cause, status=cause.status if cause.status >= 500 else 400)


class RedirectableAuthorizationError(AuthorizationRequestError):
    """An error found after the client and its redirect URI were validated: answer it at
    :attr:`target` (RFC 6749 §4.1.2.1) with :meth:`response_parameters`.

    For a client the server does not trust (dynamically registered, CIMD), the wiring
    still shows it locally until the user has interacted (DESIGN.md D16).
    """

    def __init__(self, cause: OAuthError, target: ResponseTarget) -> None:
        super().__init__(cause)
        self.target = target

    def response_parameters(self) -> dict[str, str]:
        """``error``, ``error_description``, ``state`` and ``iss`` (RFC 6749 §4.1.2.1,
        RFC 9207 §2); for a JARM mode these are the claims beside ``iss``/``aud``/``exp``."""
        params: dict[str, str] = {"error": self.error}
        if self.description:
            params["error_description"] = self.description
        if self.uri:
            params["error_uri"] = self.uri
        if self.target.state is not None:
            params["state"] = self.target.state
        params["iss"] = self.target.issuer
        return params


def _local(cause: OAuthError) -> LocalAuthorizationError:
    return LocalAuthorizationError(cause)


# -- the validated request ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationRequest:
    """A validated authorization request (response type ``code``)."""

    client_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    """Whether ``redirect_uri`` was sent (RFC 6749 §4.1.3: the token request must then send
    the same value)."""
    scopes: tuple[str, ...]
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    """The S256 challenge (RFC 7636 §4.3); ``None`` when PKCE was not used."""
    resources: tuple[str, ...] = ()
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    response_mode: ResponseMode = "query"
    dpop_jkt: str | None = None
    claims: Mapping[str, Any] | None = field(default=None, hash=False, compare=True)
    """The OIDC Core §5.5 ``claims`` request (a JSON object), when supported and sent."""
    acr_values: tuple[str, ...] = ()
    login_hint: str | None = None
    ui_locales: tuple[str, ...] = ()
    request_object: bool = False
    """Whether the parameters came from a verified request object (RFC 9101)."""
    request_uri: str | None = None
    """The pushed request this was resolved from (RFC 9126), for single use at code issuance."""

    @property
    def openid(self) -> bool:
        """An OpenID Connect request (OIDC Core §3.1.2.1: ``openid`` in the scope)."""
        return "openid" in self.scopes

    @property
    def code_challenge_method(self) -> str | None:
        return "S256" if self.code_challenge is not None else None

    def target(self, issuer: str) -> ResponseTarget:
        """Where this request's response goes."""
        return ResponseTarget(
            issuer=issuer,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            response_mode=self.response_mode,
            state=self.state,
        )

    def redirect_error(self, cause: OAuthError, issuer: str) -> RedirectableAuthorizationError:
        """``cause`` (``access_denied``, ``login_required``, ...) answered at this request's
        redirect URI."""
        return RedirectableAuthorizationError(cause, self.target(issuer))

    def with_request_uri(self, request_uri: str) -> AuthorizationRequest:
        return replace(self, request_uri=request_uri)

    # The pending form (DESIGN.md D13) --------------------------------------------------------

    def to_pending(self) -> dict[str, Any]:
        """A JSON-able dict for the PAR store; :meth:`from_pending` reads it back."""
        data: dict[str, Any] = {
            "v": _PENDING_VERSION,
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "redirect_uri_explicit": self.redirect_uri_explicit,
            "scopes": list(self.scopes),
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "resources": list(self.resources),
            "prompt": sorted(self.prompt),
            "max_age": self.max_age,
            "response_mode": self.response_mode,
            "dpop_jkt": self.dpop_jkt,
            "claims": _thaw(self.claims) if self.claims is not None else None,
            "acr_values": list(self.acr_values),
            "login_hint": self.login_hint,
            "ui_locales": list(self.ui_locales),
            "request_object": self.request_object,
        }
        return data

    @classmethod
    def from_pending(cls, data: Mapping[str, Any]) -> AuthorizationRequest:
        """Read back :meth:`to_pending`; :class:`ValueError` on anything else."""
        if not isinstance(data, Mapping) or data.get("v") != _PENDING_VERSION:
            raise ValueError("not a pending authorization request")
        mode = _field(data, "response_mode", str)
        if mode not in get_args(ResponseMode):
            raise ValueError("bad response_mode")
        claims = data.get("claims")
        if claims is not None and not isinstance(claims, dict):
            raise ValueError("bad claims")
        max_age = data.get("max_age")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise ValueError("bad max_age")
        return cls(
            client_id=_field(data, "client_id", str),
            redirect_uri=_field(data, "redirect_uri", str),
            redirect_uri_explicit=_field(data, "redirect_uri_explicit", bool),
            scopes=_strings(data, "scopes"),
            state=_optional(data, "state"),
            nonce=_optional(data, "nonce"),
            code_challenge=_optional(data, "code_challenge"),
            resources=_strings(data, "resources"),
            prompt=frozenset(_strings(data, "prompt")),
            max_age=max_age,
            response_mode=cast(ResponseMode, mode),
            dpop_jkt=_optional(data, "dpop_jkt"),
            claims=_freeze(claims) if claims is not None else None,
            acr_values=_strings(data, "acr_values"),
            login_hint=_optional(data, "login_hint"),
            ui_locales=_strings(data, "ui_locales"),
            request_object=_field(data, "request_object", bool),
        )


def _field(data: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"bad {name}")
    return value


def _optional(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"bad {name}")
    return value


def _strings(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"bad {name}")
    return tuple(value)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


# -- pushed requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushedReference:
    """An authorization request that names a pushed request (RFC 9126 §4)."""

    client_id: str
    request_uri: str


def parse_pushed_reference(params: Params) -> PushedReference | None:
    """If the request refers to a pushed request, its ``client_id`` and ``request_uri``.

    Only the ``urn:ietf:params:oauth:request_uri:`` references the PAR endpoint hands out
    are accepted: a URL to fetch is ``request_uri_not_supported`` (RFC 9101 §5.2 is not
    implemented, so nothing is fetched). Other parameters beside a reference are ignored
    (RFC 9126 §4); errors are local.
    """
    request_uri = _single_local(params, "request_uri")
    if request_uri is None:
        return None
    client_id = _client_id(params)
    if _single_local(params, "request") is not None:
        raise _local(
            InvalidRequest("request and request_uri cannot both be sent", reason="request_and_uri")
        )
    if not request_uri.startswith(PAR_REQUEST_URI_PREFIX):
        raise _local(
            RequestURINotSupported(
                "only pushed authorization request references are supported",
                reason="request_uri_not_par",
            )
        )
    if not _PAR_URN.match(request_uri):
        raise _local(InvalidRequestURI("the request_uri is malformed", reason="request_uri_shape"))
    return PushedReference(client_id, request_uri)


def resolve_pushed_request(
    reference: PushedReference, stored: Mapping[str, Any] | None
) -> AuthorizationRequest:
    """The pushed request ``stored`` under ``reference.request_uri`` (``None`` when the PAR
    store has none, or it expired), checked to belong to the client that refers to it
    (RFC 9126 §4: a request_uri is bound to its client). Errors are local
    ``invalid_request_uri``."""
    if stored is None:
        raise _local(
            InvalidRequestURI("the request_uri is unknown or expired", reason="unknown_request_uri")
        )
    try:
        request = AuthorizationRequest.from_pending(stored)
    except (ValueError, TypeError):
        raise _local(
            InvalidRequestURI("the request_uri is unknown or expired", reason="corrupt_pending")
        ) from None
    if request.client_id != reference.client_id:
        raise _local(
            InvalidRequestURI(
                "the request_uri was pushed by another client", reason="request_uri_client"
            )
        )
    return request.with_request_uri(reference.request_uri)


# -- policy ---------------------------------------------------------------------------------


def _no_resource(client: Client, resource: str) -> bool:
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationPolicy:
    """What the authorization endpoint accepts.

    ``resources`` and ``resource_allowed`` form the RFC 8707 allow-list: a ``resource`` is
    accepted when it is in ``resources`` or ``resource_allowed(client, resource)`` says so,
    compared exactly as sent (MCP clients send it exactly as the protected-resource metadata
    spells it).

    ``default_scopes`` is used when a request has no ``scope`` and the client registered
    none (RFC 6749 §3.3); with neither, such a request is ``invalid_scope``.
    """

    issuer: str
    scopes: ScopeCatalog
    default_scopes: tuple[str, ...] = ()
    require_pkce_for_confidential_clients: bool = True
    response_modes: frozenset[str] = frozenset({"query", "form_post"})
    resources: frozenset[str] = frozenset()
    resource_allowed: Callable[[Client, str], bool] = _no_resource
    require_pushed_authorization_requests: bool = False
    require_signed_request_object: bool = False
    request_objects: RequestObjectPolicy | None = None
    """``None``: the ``request`` parameter is ``request_not_supported``."""
    claims_parameter_supported: bool = False
    allow_localhost: bool = True
    """``http://localhost`` loopback redirects for native clients (RFC 8252 §8.3 discourages
    them; some MCP clients register them)."""

    def __post_init__(self) -> None:
        unknown = self.response_modes - RESPONSE_MODES
        if unknown:
            raise ConfigurationError(f"unknown response mode {sorted(unknown)[0]}")
        if self.require_signed_request_object and self.request_objects is None:
            raise ConfigurationError("require_signed_request_object needs a request object policy")
        for scope in self.default_scopes:
            if not self.scopes.is_grant_form(scope):
                raise ConfigurationError(f"default scope {scope} is not in the catalog")


# -- parameter helpers ----------------------------------------------------------------------


def _values(params: Params, name: str) -> Sequence[str]:
    values = params.get(name, ())
    if isinstance(values, str):
        raise TypeError("parameters map each name to a sequence of values")
    return values


def _single(params: Params, name: str) -> str | None:
    """The one value of ``name``; ``None`` when absent or empty (RFC 6749 §3.1)."""
    values = _values(params, name)
    if len(values) > 1:
        # RFC 6749 §3.1: parameters MUST NOT be included more than once.
        raise InvalidRequest(f"the {name} parameter is repeated", reason="repeated_parameter")
    if not values or not values[0]:
        return None
    value = values[0]
    if len(value) > _LIMITS.get(name, _MAX_VALUE):
        raise InvalidRequest(f"the {name} parameter is too long", reason="too_long")
    return value


def _single_local(params: Params, name: str) -> str | None:
    try:
        return _single(params, name)
    except OAuthError as exc:
        raise _local(exc) from None


def _client_id(params: Params) -> str:
    client_id = _single_local(params, "client_id")
    if client_id is None:
        raise _local(InvalidRequest("client_id is required", reason="missing_client_id"))
    if not _VSCHAR.match(client_id):
        raise _local(InvalidRequest("client_id is malformed", reason="malformed_client_id"))
    return client_id


def _space_list(value: str | None, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not _SPACE_LIST.match(value):
        raise InvalidRequest(f"{name} is malformed", reason=f"malformed_{name}")
    return tuple(dict.fromkeys(value.split(" ")))


# -- the validator --------------------------------------------------------------------------


class AuthorizationRequestValidator:
    """Validates authorization requests for one deployment.

    ``clients`` is the host's :class:`~.clients.ClientStore`; ``jwks`` supplies a client's
    keys for request objects (the same provider as client authentication);
    ``request_object_verifier`` is built from ``policy.request_objects`` when not given.
    """

    def __init__(
        self,
        policy: AuthorizationPolicy,
        *,
        clients: ClientStore,
        clock: Clock,
        jwks: JWKSProvider = inline_jwks,
        request_object_verifier: RequestObjectVerifier | None = None,
    ) -> None:
        self.policy = policy
        self.clients = clients
        self.clock = clock
        if request_object_verifier is None and policy.request_objects is not None:
            request_object_verifier = RequestObjectVerifier(
                policy.request_objects, issuer=policy.issuer, jwks=jwks, clock=clock
            )
        self.request_objects = request_object_verifier

    def validate(
        self, params: Params, *, client: Client | None = None, pushed: bool = False
    ) -> AuthorizationRequest:
        """Validate ``params`` (every value of every parameter, so repeats are seen).

        At the PAR endpoint pass ``pushed=True`` and the authenticated ``client``: the
        ``client_id`` parameter, when sent, must name it (RFC 9126 §2.1), and the request
        must not carry a ``request_uri``. Raises :class:`LocalAuthorizationError` or
        :class:`RedirectableAuthorizationError`.
        """
        # 1. who is asking --------------------------------------------------------------
        if _single_local(params, "request_uri") is not None:
            raise _local(
                InvalidRequest(
                    "request_uri is not allowed here"
                    if pushed
                    else "request_uri must be resolved before validation",
                    reason="request_uri_here",
                )
            )
        client = self._client(params, client)
        request_object = _single_local(params, "request")
        signed = False
        if request_object is not None:
            params = self._request_object_params(request_object, client)
            signed = True
        elif self.policy.require_signed_request_object or client.require_signed_request_object:
            raise _local(
                InvalidRequest(
                    "this client must use a signed request object", reason="unsigned_request"
                )
            )
        if not pushed and (
            self.policy.require_pushed_authorization_requests
            or client.require_pushed_authorization_requests
        ):
            raise _local(
                InvalidRequest(
                    "this client must use pushed authorization requests", reason="par_required"
                )
            )

        # 2. where the answer goes ------------------------------------------------------
        redirect_uri, explicit = self._redirect_uri(params, client)

        # 3. what is asked: errors now go back to the client ----------------------------
        # Both are read before either error is raised, so an error is answered in the
        # response mode that was asked for (JARM §2.2 wraps errors too) and with the state.
        state: str | None = None
        mode: ResponseMode = "query"
        problem: OAuthError | None = None
        try:
            state = _state(params)
        except OAuthError as exc:
            problem = exc
        try:
            mode = self._response_mode(params)
        except OAuthError as exc:
            problem = problem or exc
        target = ResponseTarget(self.policy.issuer, client.client_id, redirect_uri, mode, state)
        if problem is not None:
            raise RedirectableAuthorizationError(problem, target)
        try:
            return self._parameters(
                params,
                client,
                redirect_uri=redirect_uri,
                explicit=explicit,
                state=state,
                mode=mode,
                signed=signed,
            )
        except OAuthError as exc:
            raise RedirectableAuthorizationError(exc, target) from None

    # -- local phase ----------------------------------------------------------------------

    def _client(self, params: Params, authenticated: Client | None) -> Client:
        if authenticated is not None:
            # RFC 9126 §2.1: the client_id sent, if any, is the authenticated client's.
            client_id = _single_local(params, "client_id")
            if client_id is not None and client_id != authenticated.client_id:
                raise _local(
                    InvalidRequest(
                        "client_id does not match the authenticated client",
                        reason="client_id_mismatch",
                    )
                )
            return authenticated
        client = self.clients.load_client(_client_id(params))
        if client is None:
            raise _local(InvalidClient("the client is unknown", reason="unknown_client"))
        return client

    def _request_object_params(self, value: str, client: Client) -> dict[str, list[str]]:
        if self.request_objects is None:
            raise _local(
                RequestNotSupported(
                    "the request parameter is not supported", reason="request_not_supported"
                )
            )
        try:
            claims = self.request_objects.verify(value, client)
            params = request_object_parameters(claims)
        except OAuthError as exc:
            raise _local(exc) from None
        # RFC 9101 §6.3: the client_id outside and inside must be identical; only the
        # parameters inside are used (DESIGN.md D8).
        inner = params.get("client_id")
        if inner is None or inner != [client.client_id]:
            raise _local(
                InvalidRequestObject(
                    "the request object client_id does not match the client_id parameter",
                    reason="client_id_mismatch",
                )
            )
        return params

    def _redirect_uri(self, params: Params, client: Client) -> tuple[str, bool]:
        requested = _single_local(params, "redirect_uri")
        registered = tuple(client.redirect_uris)
        if requested is None:
            if _mentions_openid(params):
                raise _local(
                    InvalidRequest(
                        "redirect_uri is required in an OpenID request",
                        reason="missing_redirect_uri",
                    )
                )
            if len(registered) != 1:
                raise _local(
                    InvalidRequest("redirect_uri is required", reason="missing_redirect_uri")
                )
            return registered[0], False
        if not match_client_redirect_uri(
            client, requested, allow_localhost=self.policy.allow_localhost
        ):
            raise _local(
                InvalidRequest(
                    "redirect_uri is not registered for this client",
                    reason="redirect_uri_mismatch",
                )
            )
        return requested, True

    # -- redirectable phase ---------------------------------------------------------------

    def _response_mode(self, params: Params) -> ResponseMode:
        mode = _single(params, "response_mode")
        if mode is None:
            return "query"
        if mode not in RESPONSE_MODES:
            raise InvalidRequest("response_mode is unknown", reason="unknown_response_mode")
        if mode not in self.policy.response_modes:
            raise InvalidRequest("response_mode is not supported", reason="response_mode")
        if mode == "jwt":
            # JARM §2.3.4: jwt is query.jwt for the code flow.
            return "query.jwt"
        return cast(ResponseMode, mode)

    def _parameters(
        self,
        params: Params,
        client: Client,
        *,
        redirect_uri: str,
        explicit: bool,
        state: str | None,
        mode: ResponseMode,
        signed: bool,
    ) -> AuthorizationRequest:
        for name in _KNOWN_PARAMETERS:
            if len(_values(params, name)) > 1:
                raise InvalidRequest(
                    f"the {name} parameter is repeated", reason="repeated_parameter"
                )
        self._response_type(params, client)
        scopes = self._scopes(params, client)
        challenge = self._pkce(params, client)
        resources = self._resources(params, client)
        prompt = _prompt(_single(params, "prompt"))
        nonce = _single(params, "nonce")
        if nonce is not None and not _VSCHAR.match(nonce):
            raise InvalidRequest("nonce is malformed", reason="malformed_nonce")
        return AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            redirect_uri_explicit=explicit,
            scopes=scopes,
            state=state,
            nonce=nonce,
            code_challenge=challenge,
            resources=resources,
            prompt=prompt,
            max_age=_max_age(_single(params, "max_age")),
            response_mode=mode,
            dpop_jkt=_dpop_jkt(_single(params, "dpop_jkt")),
            claims=self._claims(_single(params, "claims")),
            acr_values=_space_list(_single(params, "acr_values"), "acr_values"),
            login_hint=_vschar(_single(params, "login_hint"), "login_hint"),
            ui_locales=_space_list(_single(params, "ui_locales"), "ui_locales"),
            request_object=signed,
        )

    def _response_type(self, params: Params, client: Client) -> None:
        response_type = _single(params, "response_type")
        if response_type is None:
            raise InvalidRequest("response_type is required", reason="missing_response_type")
        if response_type != "code":
            raise UnsupportedResponseType(
                "only the code response type is supported", reason="response_type"
            )
        # RFC 7591 §2: the client may use only the response and grant types it registered.
        if "code" not in client.response_types or "authorization_code" not in client.grant_types:
            raise UnauthorizedClient(
                "this client may not use the code flow", reason="response_type_not_registered"
            )

    def _scopes(self, params: Params, client: Client) -> tuple[str, ...]:
        requested = parse_scope(_single(params, "scope"))
        registered = parse_scope(client.scope) if client.scope else ()
        if not requested:
            # RFC 6749 §3.3: a request without scope gets the pre-defined default.
            requested = registered or self.policy.default_scopes
            if not requested:
                raise InvalidScope("a scope is required", reason="no_scope")
        unknown = self.policy.scopes.grant_form_errors(requested)
        if unknown:
            raise InvalidScope("the scope is unknown", reason="unknown_scope")
        if registered:
            allowed = GrantedScopes(registered)
            for scope in requested:
                if not (allowed.holds_form(scope) or allowed.covers(scope, self.policy.scopes)):
                    raise InvalidScope(
                        "the scope is not registered for this client", reason="scope_not_registered"
                    )
        return requested

    def _pkce(self, params: Params, client: Client) -> str | None:
        challenge = validate_challenge(
            _single(params, "code_challenge"), _single(params, "code_challenge_method")
        )
        if challenge is None and (
            client.public or self.policy.require_pkce_for_confidential_clients
        ):
            # RFC 9700 §2.1.1; OAuth 2.1 §4.1.1: PKCE is required.
            raise InvalidRequest("code_challenge is required", reason="pkce_required")
        return challenge

    def _resources(self, params: Params, client: Client) -> tuple[str, ...]:
        values = [v for v in _values(params, "resource") if v]
        if len(values) > _MAX_RESOURCES:
            raise InvalidTarget("too many resource parameters", reason="too_many_resources")
        for value in values:
            if len(value) > _MAX_VALUE or not _absolute_uri_without_fragment(value):
                # RFC 8707 §2: an absolute URI without a fragment.
                raise InvalidTarget(
                    "resource must be an absolute URI without fragment", reason="resource_shape"
                )
            if value not in self.policy.resources and not self.policy.resource_allowed(
                client, value
            ):
                raise InvalidTarget("the resource is not known here", reason="unknown_resource")
        return tuple(dict.fromkeys(values))

    def _claims(self, value: str | None) -> Mapping[str, Any] | None:
        if value is None or not self.policy.claims_parameter_supported:
            # OIDC Core §5.5: an OP that does not support claims ignores the parameter.
            return None
        try:
            parsed = loads_json(value)
        except ValueError:  # duplicates and too-deep nesting included
            raise InvalidRequest("claims is not JSON", reason="claims_json") from None
        if not isinstance(parsed, dict):
            raise InvalidRequest("claims must be a JSON object", reason="claims_shape")
        for member in ("userinfo", "id_token"):
            requested = parsed.get(member)
            if requested is not None and not isinstance(requested, dict):
                raise InvalidRequest(f"claims.{member} must be an object", reason="claims_shape")
        return cast(Mapping[str, Any], _freeze(parsed))


def _mentions_openid(params: Params) -> bool:
    # Decided before the scope is validated, so only split the raw value.
    return any("openid" in value.split(" ") for value in _values(params, "scope"))


def _state(params: Params) -> str | None:
    values = _values(params, "state")
    if len(values) > 1:
        raise InvalidRequest("the state parameter is repeated", reason="repeated_parameter")
    state = values[0] if values and values[0] else None
    if state is not None and (len(state) > _MAX_VALUE or not _VSCHAR.match(state)):
        # RFC 6749 Appendix A.5: state is 1*VSCHAR; such a state is not echoed.
        raise InvalidRequest("state is malformed", reason="malformed_state")
    return state


def _vschar(value: str | None, name: str) -> str | None:
    if value is not None and not _VSCHAR.match(value):
        raise InvalidRequest(f"{name} is malformed", reason=f"malformed_{name}")
    return value


def _prompt(value: str | None) -> frozenset[str]:
    prompts = _space_list(value, "prompt")
    unknown = [p for p in prompts if p not in PROMPT_VALUES]
    if unknown:
        raise InvalidRequest("prompt has an unknown value", reason="unknown_prompt")
    if "none" in prompts and len(prompts) > 1:
        # OIDC Core §3.1.2.1: none with any other value is an error.
        raise InvalidRequest("prompt none cannot be combined", reason="prompt_none_combined")
    return frozenset(prompts)


def _max_age(value: str | None) -> int | None:
    if value is None:
        return None
    if not _DIGITS.match(value) or len(value) > _MAX_AGE_DIGITS:
        # OIDC Core §3.1.2.1: a non-negative number of seconds.
        raise InvalidRequest("max_age must be a non-negative integer", reason="malformed_max_age")
    return int(value)


def _dpop_jkt(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        digest = b64url_decode(value)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        # RFC 9449 §10: the base64url SHA-256 JWK thumbprint (RFC 7638).
        raise InvalidRequest(
            "dpop_jkt is not a JWK SHA-256 thumbprint", reason="malformed_dpop_jkt"
        )
    return value


_ABSOLUTE_URI = re.compile(r"\A[A-Za-z][A-Za-z0-9+.\-]*:[\x21-\x7e]+\Z")


def _absolute_uri_without_fragment(value: str) -> bool:
    return bool(_ABSOLUTE_URI.match(value)) and "#" not in value


# -- request objects ------------------------------------------------------------------------


def request_object_parameters(claims: Mapping[str, Any]) -> dict[str, list[str]]:
    """The authorization request parameters of a verified request object's claims
    (RFC 9101 §4): strings as they are, ``max_age`` from a number, ``claims`` from an
    object (OIDC Core §6.1), ``resource`` from an array (RFC 8707). JWT claims are not
    parameters; ``request`` and ``request_uri`` inside are refused (RFC 9101 §4)."""
    params: dict[str, list[str]] = {}
    for name, value in claims.items():
        if name in _JWT_CLAIMS:
            continue
        if name in ("request", "request_uri"):
            raise InvalidRequestObject(
                "a request object cannot contain request or request_uri", reason="nested_request"
            )
        if isinstance(value, str):
            params[name] = [value]
        elif name == "max_age" and isinstance(value, int) and not isinstance(value, bool):
            params[name] = [str(value)]
        elif name == "claims" and isinstance(value, dict):
            params[name] = [json.dumps(value, separators=(",", ":"))]
        elif (
            name in _REPEATABLE
            and isinstance(value, list)
            and all(isinstance(v, str) for v in value)
        ):
            params[name] = list(value)
        else:
            # The member's name is echoed only when it is a parameter we know: a description
            # never carries a client-chosen string (RFC 6749 §5.2 limits its characters).
            raise InvalidRequestObject(
                f"the request object member {name} has the wrong type"
                if name in _KNOWN_PARAMETERS or name in _REPEATABLE
                else "a request object member has the wrong type",
                reason="member_type",
            )
    return params
