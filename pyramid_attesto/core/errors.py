"""The error tree.

::

    AttestoError
     +-- ConfigurationError        a deployment mistake; raised at startup, never rendered
     +-- OAuthError                a protocol error, rendered in the protocol's own shape
          +-- InvalidRequest, InvalidClient, InvalidGrant, ...   (one class per code)

Every registered OAuth error code has exactly one class here, with the HTTP status it is
rendered with at the token endpoint (RFC 6749 §5.2) or resource server (RFC 6750 §3.1) and the
headers it carries. Sources: RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
RFC 7591 §3.2.2, RFC 8628 §3.5, RFC 8693 §2.2.2, RFC 8707 §2, RFC 9101 §6.3, RFC 9126 §2.3,
RFC 9449 §7.1 and §8, RFC 9470 §3, OpenID Connect Core 1.0 §3.1.2.6.

``error_description`` is restricted by RFC 6749 §5.2 to ``%x20-21 / %x23-5B / %x5D-7E``
(printable ASCII without ``"`` and ``\\``). A description outside that set is a bug in this
library, so the constructor refuses it rather than sending it.

A ``reason`` is a short machine-readable word for logs, events and tests (``"expired"``,
``"bad_signature"``); it is never sent to the client and never holds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, NotRequired, TypedDict

__all__ = [
    "ERROR_CLASSES",
    "AccessDenied",
    "AccountSelectionRequired",
    "AttestoError",
    "ConfigurationError",
    "ConsentRequired",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InteractionRequired",
    "InvalidClient",
    "InvalidClientMetadata",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidRedirectURI",
    "InvalidRequest",
    "InvalidRequestObject",
    "InvalidRequestURI",
    "InvalidScope",
    "InvalidSoftwareStatement",
    "InvalidTarget",
    "InvalidToken",
    "LoginRequired",
    "OAuthError",
    "OAuthErrorBody",
    "RegistrationNotSupported",
    "RequestNotSupported",
    "RequestURINotSupported",
    "ServerError",
    "TemporarilyUnavailable",
    "UnapprovedSoftwareStatement",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UnsupportedTokenType",
    "UseDPoPNonce",
    "error_class",
    "is_valid_description",
]

# RFC 6749 §5.2: error_description and error_uri characters (NQSCHAR / URI-reference subset).
_NQSCHAR = re.compile(r"\A[\x20\x21\x23-\x5B\x5D-\x7E]*\Z")
_URI_CHARS = re.compile(r"\A[\x21\x23-\x5B\x5D-\x7E]*\Z")


def is_valid_description(text: str) -> bool:
    """Whether ``text`` may be sent as ``error_description`` (RFC 6749 §5.2)."""
    return bool(_NQSCHAR.match(text))


class OAuthErrorBody(TypedDict):
    """The JSON error body of RFC 6749 §5.2."""

    error: str
    error_description: NotRequired[str]
    error_uri: NotRequired[str]


class AttestoError(Exception):
    """Root of every exception pyramid_attesto raises on purpose."""


class ConfigurationError(AttestoError):
    """A setting or host object is missing or wrong. Raised at startup; never rendered."""


class OAuthError(AttestoError):
    """A protocol error: a registered ``error`` code, its HTTP status and its headers.

    >>> err = InvalidGrant("the code has expired", reason="expired")
    >>> err.status, err.to_dict()
    (400, {'error': 'invalid_grant', 'error_description': 'the code has expired'})
    """

    error: ClassVar[str] = "invalid_request"
    default_status: ClassVar[int] = 400

    def __init__(
        self,
        description: str | None = None,
        *,
        reason: str | None = None,
        status: int | None = None,
        uri: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if description is not None and not is_valid_description(description):
            raise ValueError("error_description outside the RFC 6749 §5.2 character set")
        if uri is not None and not _URI_CHARS.match(uri):
            raise ValueError("error_uri outside the RFC 6749 §5.2 character set")
        super().__init__(description or self.error)
        self.description = description
        self.reason = reason
        self.status = status if status is not None else self.default_status
        self.uri = uri
        self.headers: dict[str, str] = dict(headers or {})

    def to_dict(self) -> OAuthErrorBody:
        """The RFC 6749 §5.2 JSON body (also the RFC 6750 / RFC 9449 challenge parameters)."""
        body: OAuthErrorBody = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        if self.uri:
            body["error_uri"] = self.uri
        return body

    def with_status(self, status: int) -> OAuthError:
        """Return this error, rendered with another status (e.g. 401 at a resource server)."""
        self.status = status
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r}, reason={self.reason!r})"


# RFC 6749 §4.1.2.1 / §5.2 ------------------------------------------------------------------


class InvalidRequest(OAuthError):
    """A required parameter is missing, repeated, malformed or unsupported."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2).

    When the client tried HTTP authentication, the response is 401 with a ``Basic``
    challenge: use :meth:`basic_challenge`. ``basic_params`` keeps the challenge's
    auth-params, so a framework can hand the challenge to a host hook before rendering it.

    >>> err = InvalidClient("client authentication failed").basic_challenge()
    >>> err.status, err.headers["WWW-Authenticate"]
    (401, 'Basic realm="oauth", charset="UTF-8"')
    """

    error = "invalid_client"
    default_status = 401
    basic_params: tuple[tuple[str, str], ...] = ()

    def basic_challenge(self, realm: str = "oauth") -> InvalidClient:
        """Answer with 401 and ``WWW-Authenticate: Basic`` (RFC 6749 §5.2, RFC 7617 §2)."""
        if not is_valid_description(realm):
            raise ValueError("a realm outside the quotable character set")
        self.status = 401
        self.basic_params = (("realm", realm), ("charset", "UTF-8"))
        self.headers["WWW-Authenticate"] = f'Basic realm="{realm}", charset="UTF-8"'
        return self


class InvalidGrant(OAuthError):
    """The grant (code, refresh token, assertion) is invalid, expired, revoked or reused."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The client may not use this grant or response type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    """The resource owner or the server denied the request."""

    error = "access_denied"
    default_status = 403


class ServerError(OAuthError):
    """An unexpected condition; the description never carries internals."""

    error = "server_error"
    default_status = 500


class TemporarilyUnavailable(OAuthError):
    """The server cannot handle the request now (e.g. its database is unreachable)."""

    error = "temporarily_unavailable"
    default_status = 503


# RFC 6750 §3.1 ------------------------------------------------------------------------------


class InvalidToken(OAuthError):
    """The access token is expired, revoked, malformed or otherwise invalid."""

    error = "invalid_token"
    default_status = 401


class InsufficientScope(OAuthError):
    """The token lacks a scope the resource requires; ``scope`` names what is required."""

    error = "insufficient_scope"
    default_status = 403

    def __init__(
        self,
        description: str | None = None,
        *,
        scope: str | None = None,
        reason: str | None = None,
        status: int | None = None,
        uri: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description, reason=reason, status=status, uri=uri, headers=headers)
        self.scope = scope


# RFC 7009 §2.2.1, RFC 8693 §2.2.2 ---------------------------------------------------------


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


# RFC 8707 §2 --------------------------------------------------------------------------------


class InvalidTarget(OAuthError):
    """The ``resource`` is invalid, unknown, or outside what the client may reach."""

    error = "invalid_target"


# RFC 9449 §7.1, §8 --------------------------------------------------------------------------


class InvalidDPoPProof(OAuthError):
    """The DPoP proof is missing or invalid. 400 at the token endpoint, 401 at a resource."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    """The server requires a DPoP nonce; the fresh one travels in the ``DPoP-Nonce`` header.

    400 at the token endpoint (RFC 9449 §8), 401 with a ``DPoP`` challenge at a resource
    server (RFC 9449 §9).
    """

    error = "use_dpop_nonce"

    def __init__(
        self,
        description: str | None = None,
        *,
        nonce: str,
        reason: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(
            description or "a DPoP nonce is required",
            reason=reason,
            status=status,
            headers={"DPoP-Nonce": nonce},
        )
        self.nonce = nonce


# RFC 9470 §3 --------------------------------------------------------------------------------


class InsufficientUserAuthentication(OAuthError):
    """The authentication event behind the token does not meet the resource's requirements."""

    error = "insufficient_user_authentication"
    default_status = 401


# RFC 7591 §3.2.2 ----------------------------------------------------------------------------


class InvalidRedirectURI(OAuthError):
    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"


class InvalidSoftwareStatement(OAuthError):
    error = "invalid_software_statement"


class UnapprovedSoftwareStatement(OAuthError):
    error = "unapproved_software_statement"


# RFC 9101 §6.3, RFC 9126 §2.3, OpenID Connect Core §3.1.2.6 --------------------------------


class InvalidRequestURI(OAuthError):
    error = "invalid_request_uri"


class InvalidRequestObject(OAuthError):
    error = "invalid_request_object"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestURINotSupported(OAuthError):
    error = "request_uri_not_supported"


class RegistrationNotSupported(OAuthError):
    error = "registration_not_supported"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class LoginRequired(OAuthError):
    error = "login_required"


class AccountSelectionRequired(OAuthError):
    error = "account_selection_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


def _registry() -> Mapping[str, type[OAuthError]]:
    found: dict[str, type[OAuthError]] = {}
    pending: list[type[OAuthError]] = list(OAuthError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__ == __name__:
            found[cls.error] = cls
    return MappingProxyType(found)


ERROR_CLASSES: Mapping[str, type[OAuthError]] = _registry()
"""Every error code defined here, mapped to its class (read-only)."""


def error_class(code: str) -> type[OAuthError]:
    """The class of a registered error code; :class:`KeyError` for an unknown one."""
    return ERROR_CLASSES[code]
