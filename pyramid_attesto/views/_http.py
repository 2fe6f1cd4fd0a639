"""Request parsing shared by the protocol endpoints: method, transport, content type and the
form body, each refused with a clear OAuth error (never a 500).

- a method the endpoint does not serve: ``405`` with ``Allow`` and an ``invalid_request`` body;
- ``attesto.require_https`` (DESIGN.md D23): a plain-HTTP request is ``invalid_request``; the
  scheme is the WSGI one, or ``X-Forwarded-Proto`` / ``Forwarded: proto=`` only when the socket
  peer is in ``attesto.trusted_proxies`` (rule 1);
- the body must be ``application/x-www-form-urlencoded`` (RFC 6749 §3.2), at most
  ``attesto.max_body_bytes``, ASCII on the wire and UTF-8 once percent-decoded; every name
  keeps all its values so that a repeated parameter is visible (RFC 6749 §3.2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from pyramid.response import Response

from pyramid_attesto.core.errors import InvalidRequest
from pyramid_attesto.responses import json_response
from pyramid_attesto.settings import AttestoSettings

__all__ = ["Form", "check_https", "method_not_allowed", "parse_form"]

Form = dict[str, list[str]]
FORM_TYPE = "application/x-www-form-urlencoded"


def method_not_allowed(allowed: Sequence[str]) -> Response:
    """``405`` with ``Allow`` (RFC 9110 §15.5.6) and an RFC 6749 §5.2 body."""
    methods = ", ".join(allowed)
    response = json_response(
        {"error": "invalid_request", "error_description": f"this endpoint accepts {methods}"},
        status=405,
        headers={"Allow": methods},
    )
    response.headers["x-tm"] = "commit"
    return response


def _peer_trusted(request: Any, settings: AttestoSettings) -> bool:
    if not settings.trusted_proxies:
        return False
    try:
        peer = ipaddress.ip_address(request.environ.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in network for network in settings.trusted_proxies)


def _forwarded_proto(request: Any) -> str | None:
    forwarded = request.headers.get("Forwarded")
    if forwarded:
        first = str(forwarded).split(",")[0]
        for pair in first.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "proto":
                return value.strip('"').lower()
    proto = request.headers.get("X-Forwarded-Proto")
    return str(proto).split(",")[0].strip().lower() if proto else None


def request_scheme(request: Any, settings: AttestoSettings) -> str:
    """The scheme the client used, after trusted-proxy resolution."""
    if _peer_trusted(request, settings):
        proto = _forwarded_proto(request)
        if proto in ("http", "https"):
            return proto
    return str(request.environ.get("wsgi.url_scheme", "http")).lower()


def check_https(request: Any, settings: AttestoSettings) -> None:
    """Refuse plain HTTP when ``attesto.require_https`` is on (DESIGN.md D23)."""
    if settings.require_https and request_scheme(request, settings) != "https":
        raise InvalidRequest("this endpoint is served over https only", reason="http")


def parse_form(request: Any, max_bytes: int) -> Form:
    """The form body of ``request`` (see the module documentation)."""
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
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
