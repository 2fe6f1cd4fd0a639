"""Request parsing shared by the protocol endpoints: method, transport, content type and the
form body, each refused with a clear OAuth error (never a 500).

- a method the endpoint does not serve: ``405`` with ``Allow`` and an ``invalid_request`` body;
- ``attesto.require_https`` (DESIGN.md D23): a plain-HTTP request is ``invalid_request``; the
  scheme is resolved by :class:`~pyramid_attesto.request.RequestAdapter` (forwarding headers
  only from ``attesto.trusted_proxies``, rule 1);
- the body must be ``application/x-www-form-urlencoded`` (RFC 6749 §3.2), at most
  ``attesto.max_body_bytes``, ASCII on the wire and UTF-8 once percent-decoded; every name
  keeps all its values so that a repeated parameter is visible (RFC 6749 §3.2).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from pyramid.httpexceptions import HTTPException
from pyramid.response import Response

from pyramid_attesto.core.errors import InvalidRequest, ServerError, TemporarilyUnavailable
from pyramid_attesto.request import RequestAdapter
from pyramid_attesto.responses import oauth_error_response

logger = logging.getLogger("pyramid_attesto")

__all__ = [
    "Form",
    "check_https",
    "cors_preflight",
    "database_error_view",
    "method_not_allowed",
    "parse_form",
    "parse_pairs",
    "with_cors",
]

Form = dict[str, list[str]]
FORM_TYPE = "application/x-www-form-urlencoded"


def method_not_allowed(allowed: Sequence[str]) -> Response:
    """``405`` with ``Allow`` (RFC 9110 §15.5.6) and an RFC 6749 §5.2 body."""
    methods = ", ".join(allowed)
    error = InvalidRequest(
        f"this endpoint accepts {methods}", reason="method", status=405, headers={"Allow": methods}
    )
    return oauth_error_response(error)


def check_https(request: Any, adapter: RequestAdapter, require_https: bool) -> None:
    """Refuse plain HTTP when ``attesto.require_https`` is on (DESIGN.md D23); the scheme is
    the one :class:`~pyramid_attesto.request.RequestAdapter` resolves (rule 1)."""
    if require_https and adapter.scheme(request.environ) != "https":
        raise InvalidRequest("this endpoint is served over https only", reason="http")


def parse_form(request: Any, max_bytes: int) -> Form:
    """The form body of ``request`` (see the module documentation)."""
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not content_type and not request.content_length:
        return {}  # no body at all: the endpoint reports what is missing
    if content_type != FORM_TYPE:
        raise InvalidRequest(
            "the request body must be application/x-www-form-urlencoded",
            reason="content_type",
        )
    length = request.content_length
    if length is not None and length > max_bytes:
        raise InvalidRequest("the request body is too large", reason="too_large")
    body = request.body_file.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise InvalidRequest("the request body is too large", reason="too_large")
    return parse_pairs(body)


def parse_pairs(body: bytes) -> Form:
    """Decode ``application/x-www-form-urlencoded`` bytes (a body or a query string): ASCII on
    the wire, UTF-8 once percent-decoded, no NUL; every name keeps all its values."""
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, encoding="utf-8", errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not valid form data", reason="encoding") from None
    form: Form = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest("the request body holds a NUL character", reason="nul")
        form.setdefault(name, []).append(value)
    return form


def database_error_view(exc: Exception, request: Any) -> Response:
    """A database failure at an attesto endpoint (DESIGN.md rule 3): the transaction aborts
    (pyramid_tm aborts when an exception view renders) and the client gets a clean ``503``
    JSON error (``temporarily_unavailable``, RFC 6749 §5.2 style) without details."""
    logger.error("pyramid_attesto: database failure at %s", request.path, exc_info=exc)
    error = TemporarilyUnavailable(
        "the service is temporarily unavailable", reason="database", headers={"Retry-After": "1"}
    )
    return oauth_error_response(error, request, commit=False)


def unexpected_error_view(exc: Exception, request: Any) -> Response:
    """The last resort at an attesto endpoint: a bug or a host object that raised. The
    transaction aborts, the traceback goes to the log, and the client gets a plain
    ``server_error`` JSON body with nothing of the exception in it. Pyramid's own HTTP
    exceptions (a 404 for a disabled endpoint) pass through unchanged."""
    if isinstance(exc, HTTPException):
        return exc
    logger.error("pyramid_attesto: unexpected error at %s", request.path, exc_info=exc)
    error = ServerError("the server could not answer", reason="unexpected")
    return oauth_error_response(error, request, commit=False)


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "DPoP-Nonce, WWW-Authenticate",
}


def with_cors(response: Response) -> Response:
    """Credential-less CORS (DESIGN.md D17): any origin may call, no cookie is involved
    (the client authenticates itself in the request)."""
    response.headers.update(CORS_HEADERS)
    return response


def cors_preflight() -> Response:
    """The answer to a CORS preflight (``OPTIONS``) at a CORS-enabled endpoint."""
    response = Response(status=204)
    response.headers.update(
        {
            **CORS_HEADERS,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, DPoP",
            "Access-Control-Max-Age": "600",
        }
    )
    return response
