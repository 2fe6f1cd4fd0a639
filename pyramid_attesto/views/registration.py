"""Dynamic client registration: ``POST {prefix}/register`` (RFC 7591 §3) and the client
configuration endpoint ``GET``/``PUT``/``DELETE {prefix}/register/{client_id}`` (RFC 7592
§2.1, §2.2, §2.3), served when ``attesto.registration.enabled``.

Parse (https only, D23; a JSON object body of at most ``attesto.max_body_bytes``; an
``Authorization: Bearer`` initial access token or registration access token) -> call
:class:`~pyramid_attesto.core.registration.RegistrationService` -> render: ``201`` with the
client information, ``200`` for a read or an update, ``204`` for a delete; errors as
RFC 7591 §3.2.2 JSON, ``401`` with a ``Bearer`` challenge for a missing or wrong token
(RFC 6750 §3). Every answer carries ``Cache-Control: no-store``; registration is
CORS-enabled (D17).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response

from pyramid_attesto.challenges import Challenge, www_authenticate
from pyramid_attesto.core.errors import InvalidClientMetadata, InvalidRequest, OAuthError
from pyramid_attesto.responses import json_response, mark_no_store, oauth_error_response
from pyramid_attesto.server import AuthorizationServer, get_server
from pyramid_attesto.views._http import check_https, method_not_allowed, with_cors

__all__ = ["registration_client_view", "registration_view"]

_BEARER = re.compile(r"\ABearer +([A-Za-z0-9\-._~+/]+=*)\Z", re.IGNORECASE)
_MAX_DEPTH = 32
_CLIENT_METHODS = ("GET", "PUT", "DELETE")


def _bearer(request: Any) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    match = _BEARER.match(header.strip())
    if match is None:
        raise InvalidRequest("the Authorization header is not a Bearer token", reason="auth")
    return match.group(1)


def _depth(value: object, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _json_body(request: Any, max_bytes: int) -> object:
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise InvalidRequest("the request body must be application/json", reason="content_type")
    if request.content_length is not None and request.content_length > max_bytes:
        raise InvalidRequest("the request body is too large", reason="too_large")
    body = request.body_file.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise InvalidRequest("the request body is too large", reason="too_large")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidClientMetadata("the request body is not JSON", reason="not_json") from None
    if _depth(document) > _MAX_DEPTH:
        raise InvalidClientMetadata("the request body is nested too deeply", reason="too_deep")
    return document


def _remote_addr(request: Any, server: AuthorizationServer) -> str | None:
    environ: dict[str, Any] = request.environ
    if server.adapter.peer_is_trusted(environ):
        forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", ""))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    peer = environ.get("REMOTE_ADDR")
    return str(peer) if peer is not None else None


def _error(request: Any, error: OAuthError) -> Response:
    headers = {}
    if error.status == 401:
        # RFC 6750 §3: the registration endpoints are protected by Bearer tokens.
        params = [("error", error.error)]
        if error.description:
            params.append(("error_description", error.description))
        challenge = Challenge("Bearer", tuple(params))
        headers["WWW-Authenticate"] = www_authenticate(request, (challenge,), error)
    return oauth_error_response(error, request, headers=headers)


def _preflight(methods: str) -> Response:
    response = Response(status=204)
    response.headers.update(
        {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        }
    )
    return response


def registration_view(request: Any) -> Response:
    """``POST {prefix}/register`` (RFC 7591 §3.1): ``201`` and the client information."""
    server = get_server(request.registry)
    service = server.registration
    if service is None:
        return HTTPNotFound()
    if request.method == "OPTIONS":
        return _preflight("POST")
    if request.method != "POST":
        return with_cors(method_not_allowed(("POST",)))
    try:
        check_https(request, server.adapter, server.settings.require_https)
        token = _bearer(request)
        body = _json_body(request, server.settings.max_body_bytes)
        answer = service.register(
            body, initial_access_token=token, remote_addr=_remote_addr(request, server)
        )
    except OAuthError as error:
        return with_cors(_error(request, error))
    return with_cors(json_response(answer, status=201))


def registration_client_view(request: Any) -> Response:
    """``GET``/``PUT``/``DELETE {prefix}/register/{client_id}`` (RFC 7592 §2.1, §2.2,
    §2.3)."""
    server = get_server(request.registry)
    service = server.registration
    if service is None:
        return HTTPNotFound()
    if request.method == "OPTIONS":
        return _preflight(", ".join(_CLIENT_METHODS))
    if request.method not in _CLIENT_METHODS:
        return with_cors(method_not_allowed(_CLIENT_METHODS))
    client_id = request.matchdict["client_id"]
    try:
        check_https(request, server.adapter, server.settings.require_https)
        token = _bearer(request)
        if request.method == "GET":
            return with_cors(json_response(service.read(client_id, token)))
        if request.method == "PUT":
            body = _json_body(request, server.settings.max_body_bytes)
            answer = service.update(
                client_id, token, body, remote_addr=_remote_addr(request, server)
            )
            return with_cors(json_response(answer))
        service.delete(client_id, token)
    except OAuthError as error:
        return with_cors(_error(request, error))
    response = mark_no_store(Response(status=204))
    response.headers["x-tm"] = "commit"
    return with_cors(response)
