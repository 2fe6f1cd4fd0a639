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

from .core.errors import OAuthError

__all__ = [
    "PROTECTED_HEADERS",
    "ErrorEnvelope",
    "IResponseHooks",
    "ResponseHooks",
    "SendError",
    "json_response",
    "oauth_error_response",
    "response_hooks",
]

logger = logging.getLogger("pyramid_attesto")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_NO_STORE_HEADERS = list(NO_STORE.items())

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


class IResponseHooks(Interface):  # type: ignore[misc]
    """Registry key of the :class:`ResponseHooks`."""


@dataclass(frozen=True, slots=True)
class ResponseHooks:
    """The deployment hooks of attesto's responses (DESIGN.md D24); ``None``: not set."""

    send_error: SendError | None = None
    www_authenticate: Callable[..., Sequence[Any]] | None = None
    """``www_authenticate(request, challenges, error)``; see :mod:`pyramid_attesto.challenges`."""


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
    """A compact JSON response; ``no_store`` adds ``Cache-Control: no-store`` (RFC 6749 §5.1)."""
    data = _dumps(body)
    # The header list is built directly: WebOb's content_type/charset handling and its
    # header multidict cost more than the rest of a token response's rendering.
    headerlist = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if no_store:
        headerlist += _NO_STORE_HEADERS
    response = Response(body=data, status=status, headerlist=headerlist)
    if headers:
        response.headers.update(headers)
    return response


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
    adds ``x-tm: commit`` (rule 3). ``request`` defaults to the current request.
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
    if headers:
        response.headers.update(headers)
    if commit:
        response.headers["x-tm"] = "commit"
    return response
