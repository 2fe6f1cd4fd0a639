"""Rendering of protocol results and errors (the Pyramid side of core's error tree).

DESIGN.md rule 3: attesto's protocol views *return* their OAuth error responses rather than
raise them, so pyramid_tm commits the request's must-persist writes (a consumed code, a
revoked family or a replay record) together with the error. The ``x-tm: commit`` header makes
a host's ``tm.commit_veto`` keep them too.

Custom error envelopes (DESIGN.md D24): every attesto JSON error response goes through
:func:`oauth_error_response`, which hands the RFC 6749 §5.2 body to the host's
``attesto.send_error`` hook (:class:`SendError`, see :mod:`pyramid_attesto.errorhooks`). The
hook chooses the body (and may add headers or change the JSON media type); the status,
``Cache-Control: no-store``, ``x-tm`` and the protocol's headers (``WWW-Authenticate``,
``DPoP-Nonce``, ``Allow``, ``Retry-After``) stay attesto's. A hook that raises or returns
something that cannot be sent is logged and the standard body is sent instead: a broken
envelope never turns an OAuth error into a 500.

The ``Basic`` challenge of a failed client authentication (``invalid_client`` at the token,
PAR, revocation and introspection endpoints, RFC 6749 §5.2) goes through the host's
``attesto.www_authenticate`` hook like the resource server's challenges
(:func:`pyramid_attesto.challenges.www_authenticate`); the hook must keep the ``Basic``
scheme.

Non-cacheable responses (DESIGN.md D24): every response attesto marks non-cacheable (token,
error, PAR, revocation, introspection, UserInfo, registration and authorization responses,
never discovery or JWKS) carries ``Cache-Control: no-store`` and ``Pragma: no-cache``
(RFC 6749 §5.1, RFC 6750 §5.3, RFC 9700) and is marked for the host's ``attesto.no_store``
hook (:class:`NoStore`), which may add its own headers (``Surrogate-Control``,
``CDN-Cache-Control``, ``Expires``). The hook runs last, from a ``NewResponse`` subscriber
that exists only when a hook is configured (so a deployment without one pays nothing but the
mark); afterwards attesto checks that ``Cache-Control`` still carries ``no-store`` and
``Pragma`` ``no-cache``, and restores its own headers (logging an error) when the hook
removed or weakened them or raised: a hook can never make a token response cacheable.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyramid.response import Response
from pyramid.threadlocal import get_current_request
from zope.interface import Interface

from .core.errors import InvalidClient, OAuthError

__all__ = [
    "NO_STORE",
    "PROTECTED_HEADERS",
    "ErrorEnvelope",
    "IResponseHooks",
    "NoStore",
    "ResponseHooks",
    "SendError",
    "apply_no_store_hook",
    "is_marked_no_store",
    "json_response",
    "mark_no_store",
    "no_store_subscriber",
    "oauth_error_response",
    "response_hooks",
]

logger = logging.getLogger("pyramid_attesto")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""attesto's headers of a non-cacheable response (RFC 6749 §5.1)."""
_NO_STORE_HEADERS = list(NO_STORE.items())
# RFC 9110 §5.6.4 quoted-strings, blanked before a directive list is split on commas.
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')

PROTECTED_HEADERS = frozenset(
    {
        "cache-control",
        "pragma",
        "x-tm",
        "www-authenticate",
        "dpop-nonce",
        "allow",
        "retry-after",
        "content-type",
        "content-length",
    }
)
"""Headers an error envelope may not set: attesto's, the protocol's and the framing."""

_MEDIA_TYPE = re.compile(r"\Aapplication/(?:[a-z0-9.+-]+\+)?json\Z")
_HEADER_NAME = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HEADER_VALUE = re.compile(r"\A[\t\x20-\x7e]*\Z")


@dataclass(frozen=True, slots=True)
class ErrorEnvelope:
    """What a :class:`SendError` hook may return instead of a bare JSON body.

    ``content_type`` is a JSON media type (``application/json``,
    ``application/problem+json``); ``headers`` are added to the response, except those in
    :data:`PROTECTED_HEADERS`, which stay attesto's.
    """

    body: object
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class SendError(Protocol):
    """``attesto.send_error``: the envelope of attesto's JSON error responses.

    ``request`` is the Pyramid request, ``error`` the
    :class:`~pyramid_attesto.core.errors.OAuthError` (``error.error``, ``error.status``,
    ``error.description``, ``error.reason``: a machine word for logs, never sent by
    attesto), ``body`` the standard RFC 6749 §5.2 body (a fresh dict the hook may keep or
    wrap). Return the JSON body to send, or an :class:`ErrorEnvelope`. Keep the ``error``
    code somewhere in the body: clients branch on it (``use_dpop_nonce``, ``invalid_grant``).
    """

    def __call__(self, request: Any, error: OAuthError, body: dict[str, Any]) -> object: ...


class NoStore(Protocol):
    """``attesto.no_store``: a deployment's own headers on attesto's non-cacheable responses.

    Called with the Pyramid request and the response (a :class:`pyramid.response.Response`
    that already carries ``Cache-Control: no-store`` and ``Pragma: no-cache``) of every
    response attesto marks non-cacheable: token (success and error), PAR, revocation,
    introspection, UserInfo, registration, the authorization endpoint's pages and redirects,
    every attesto JSON error and the resource server's challenges; never the discovery
    documents or the JWKS, which are cacheable. It runs last, after the view and the tweens.
    For a CDN in front of the server::

        def no_store(request, response):
            response.headers["Surrogate-Control"] = "no-store"
            response.headers["CDN-Cache-Control"] = "no-store"
            response.headers["Cache-Control"] = "no-store, private"

    The hook may add headers and extend ``Cache-Control``, but ``no-store`` (and ``Pragma:
    no-cache``) must stay: a hook that removes or weakens them, or raises, is logged and
    attesto's headers are put back (RFC 6749 §5.1, RFC 6750 §5.3).
    """

    def __call__(self, request: Any, response: Any) -> None: ...


class IResponseHooks(Interface):  # type: ignore[misc]
    """Registry key of the :class:`ResponseHooks`."""


@dataclass(frozen=True, slots=True)
class ResponseHooks:
    """The deployment hooks of attesto's responses (DESIGN.md D24); ``None``: not set."""

    send_error: SendError | None = None
    www_authenticate: Callable[..., Sequence[Any]] | None = None
    """``www_authenticate(request, challenges, error)``; see :mod:`pyramid_attesto.challenges`."""
    no_store: NoStore | None = None


_NO_HOOKS = ResponseHooks()


def response_hooks(request: Any) -> ResponseHooks:
    """The hooks of ``request``'s application (no hooks without a request)."""
    registry = getattr(request, "registry", None)
    if registry is None:
        return _NO_HOOKS
    hooks = registry.queryUtility(IResponseHooks)
    return hooks if isinstance(hooks, ResponseHooks) else _NO_HOOKS


def _dumps(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def json_response(
    body: object,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    no_store: bool = True,
) -> Response:
    """A compact JSON response; ``no_store`` adds ``Cache-Control: no-store`` (RFC 6749 §5.1)
    and marks the response for the ``attesto.no_store`` hook."""
    data = _dumps(body)
    # The header list is built directly: WebOb's content_type/charset handling and its
    # header multidict cost more than the rest of a token response's rendering.
    headerlist = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if no_store:
        headerlist += _NO_STORE_HEADERS
    response = Response(body=data, status=status, headerlist=headerlist)
    response.attesto_no_store = no_store
    if headers:
        response.headers.update(headers)
    return response


def mark_no_store(response: Response) -> Response:
    """Put attesto's ``Cache-Control: no-store`` and ``Pragma: no-cache`` on ``response``
    (RFC 6749 §5.1) and mark it for the ``attesto.no_store`` hook."""
    response.headers.update(NO_STORE)
    response.attesto_no_store = True
    return response


def is_marked_no_store(response: object) -> bool:
    """Whether attesto marked ``response`` non-cacheable (:func:`mark_no_store`)."""
    return getattr(response, "attesto_no_store", False) is True


def _has_directive(values: Sequence[str], directive: str) -> bool:
    """Whether a field's lines carry ``directive`` as a directive name (RFC 9111 §5.2: a
    comma-separated list of ``token [ "=" ( token / quoted-string ) ]``, case-insensitive);
    a ``no-store`` inside a quoted argument is not the directive."""
    for value in values:
        for part in _QUOTED_STRING.sub('""', value).split(","):
            if part.split("=", 1)[0].strip().lower() == directive:
                return True
    return False


def apply_no_store_hook(hook: NoStore, request: Any, response: Any) -> None:
    """Call ``hook`` on a response attesto marked non-cacheable; afterwards the response
    still carries ``Cache-Control: no-store`` and ``Pragma: no-cache`` whatever the hook did
    (RFC 6749 §5.1, RFC 6750 §5.3: a token or an error is never stored by a cache)."""
    try:
        hook(request, response)
        headers = response.headers
        if not _has_directive(headers.getall("Cache-Control"), "no-store"):
            problem = "removed or weakened Cache-Control: no-store"
        elif not _has_directive(headers.getall("Pragma"), "no-cache"):
            problem = "removed Pragma: no-cache"
        else:
            return
        logger.error(
            "pyramid_attesto: attesto.no_store %s at %s; attesto's headers are restored",
            problem,
            getattr(request, "path", "?"),
        )
    except Exception:
        logger.exception(
            "pyramid_attesto: attesto.no_store failed; attesto's no-store headers are restored"
        )
    response.headers.update(NO_STORE)


def no_store_subscriber(hook: NoStore) -> Callable[[Any], None]:
    """The ``NewResponse`` subscriber that runs ``hook`` on attesto's marked responses (once:
    the mark is cleared, so a subrequest's response returned as is is not hooked twice)."""

    def subscriber(event: Any) -> None:
        response = event.response
        if is_marked_no_store(response):
            response.attesto_no_store = False
            apply_no_store_hook(hook, event.request, response)

    return subscriber


def _envelope(
    request: Any, error: OAuthError, body: dict[str, Any]
) -> tuple[bytes, str, dict[str, str]] | None:
    """The host's envelope of ``error``: (body bytes, media type, extra headers), or
    ``None`` to send the standard body."""
    hook = response_hooks(request).send_error
    if hook is None:
        return None
    try:
        result = hook(request, error, body)
        envelope = result if isinstance(result, ErrorEnvelope) else ErrorEnvelope(result)
        if not _MEDIA_TYPE.match(envelope.content_type):
            raise ValueError(f"{envelope.content_type!r} is not a JSON media type")
        encoded = _dumps(envelope.body)
        headers = {}
        for name, value in envelope.headers.items():
            if not (_HEADER_NAME.match(name) and _HEADER_VALUE.match(value)):
                raise ValueError(f"the header {name!r} cannot be sent")
            if name.lower() not in PROTECTED_HEADERS:
                headers[name] = value
    except Exception:
        logger.exception("pyramid_attesto: attesto.send_error failed; the standard body is sent")
        return None
    return encoded, envelope.content_type, headers


def _client_challenge(request: Any, error: InvalidClient) -> str:
    """The ``Basic`` challenge of a failed client authentication (RFC 6749 §5.2), through
    the host's ``attesto.www_authenticate`` hook."""
    from .challenges import Challenge, www_authenticate  # that module imports this one

    challenge = Challenge("Basic", error.basic_params)
    return www_authenticate(request, (challenge,), error, require_scheme="Basic")


def oauth_error_response(
    error: OAuthError,
    request: Any = None,
    *,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    commit: bool = True,
) -> Response:
    """The JSON error response of ``error`` (RFC 6749 §5.2), in the host's envelope.

    ``body`` replaces the standard body (a resource server's ``insufficient_scope`` adds
    ``scope``); ``headers`` are protocol headers added to ``error.headers``; ``commit``
    adds ``x-tm: commit`` (rule 3). ``request`` defaults to the current request. The
    ``Basic`` challenge of an ``invalid_client`` goes through ``attesto.www_authenticate``.
    """
    if request is None:
        request = get_current_request()
    standard: dict[str, Any] = dict(body if body is not None else error.to_dict())
    response = json_response(standard, status=error.status)
    envelope = _envelope(request, error, dict(standard))
    if envelope is not None:
        encoded, content_type, extra = envelope
        response.body = encoded
        response.headers["Content-Type"] = content_type
        response.headers.update(extra)
    response.headers.update(error.headers)
    if isinstance(error, InvalidClient) and error.basic_params:
        response.headers["WWW-Authenticate"] = _client_challenge(request, error)
    if headers:
        response.headers.update(headers)
    if commit:
        response.headers["x-tm"] = "commit"
    return response
