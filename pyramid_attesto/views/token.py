"""The token endpoint, ``POST {prefix}/token`` (RFC 6749 §3.2): parse, authenticate the
client, verify the DPoP proof, run the grant in core, render.

Every response carries ``Cache-Control: no-store`` (RFC 6749 §5.1). Errors are *returned*
with ``x-tm: commit`` (DESIGN.md rule 3) so a consumed code, a revoked family or a replay
record commits with the error. With DPoP nonces on, a proof without a valid nonce gets
``400 use_dpop_nonce`` and a ``DPoP-Nonce`` header (RFC 9449 §8); successful responses carry
a fresh nonce too (§8.2).
"""

from __future__ import annotations

from typing import Any, cast

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response

from pyramid_attesto.core.client_auth import ClientAuthRequest, authenticate_client
from pyramid_attesto.core.dpop import DPoPProof, single_dpop_header
from pyramid_attesto.core.errors import OAuthError
from pyramid_attesto.core.grants import TokenRequest
from pyramid_attesto.core.host import Event
from pyramid_attesto.core.introspection import INTROSPECTION_JWT_MEDIA_TYPE, accepts_jwt_response
from pyramid_attesto.core.keys import Algorithm
from pyramid_attesto.core.mtls import ClientCertificate
from pyramid_attesto.responses import json_response, mark_no_store, oauth_error_response
from pyramid_attesto.server import AuthorizationServer, TokenEndpoint, get_server
from pyramid_attesto.views._http import (
    Form,
    check_https,
    cors_preflight,
    method_not_allowed,
    parse_form,
    with_cors,
)

__all__ = ["authenticate", "introspection_view", "revocation_view", "token_view"]


def client_certificate(request: Any, server: AuthorizationServer) -> ClientCertificate | None:
    """The request's client certificate as RFC 8705 checks see it (``None`` with mTLS off,
    without a certificate, or with one that does not parse)."""
    if not server.settings.mtls_enabled:
        return None
    return server.adapter.presented_certificate(request.environ)


def authenticate(
    request: Any, server: AuthorizationServer, endpoint: TokenEndpoint, form: Form, name: str
) -> Any:
    """Authenticate the client of a request to endpoint ``name`` (RFC 6749 §2.3)."""
    return authenticate_client(
        ClientAuthRequest(
            form=form,
            issuer=server.issuer,
            endpoint_url=server.endpoint_urls[name],
            authorization=request.headers.get("Authorization"),
            token_endpoint_url=server.endpoint_urls.get("token"),
            client_certificate=client_certificate(request, server),
        ),
        store=endpoint.client_store,
        replay_store=request.attesto_stores.replay,
        policy=endpoint.client_auth,
        clock=server.clock,
    )


def _proof(request: Any, server: AuthorizationServer, endpoint: TokenEndpoint) -> DPoPProof | None:
    header = request.headers.get("DPoP")
    if header is None or endpoint.dpop is None:
        return None
    return endpoint.dpop.verify(
        single_dpop_header([header]),
        htm=request.method,
        htu=server.request_urls("token"),
        nonces=endpoint.nonces,
    )


def token_view(request: Any) -> Response:
    """``POST {prefix}/token``; CORS-enabled (D17)."""
    server = get_server(request.registry)
    endpoint = server.token
    if endpoint is None:
        return HTTPNotFound()
    if request.method == "OPTIONS":
        return cors_preflight()
    return with_cors(_token(request, server, endpoint))


def _token(request: Any, server: AuthorizationServer, endpoint: TokenEndpoint) -> Response:
    if request.method != "POST":
        return method_not_allowed(("POST",))
    client = None
    try:
        check_https(request, server.adapter, server.settings.require_https)
        form = parse_form(request, server.settings.max_body_bytes)
        client = authenticate(request, server, endpoint, form, "token")
        proof = _proof(request, server, endpoint)
        certificate = client_certificate(request, server)
        body = endpoint.service.exchange(
            TokenRequest(
                form=form,
                client=client,
                dpop=proof,
                certificate_thumbprint=certificate.thumbprint if certificate else None,
            ),
            request.attesto_stores,
        )
    except OAuthError as error:
        if client is None:  # the grant emits its own denials once the client is known
            server.emit(Event("token_denied", result="failure", reason=error.reason or error.error))
        return oauth_error_response(error, request)
    response = json_response(body)
    if endpoint.nonces is not None:
        response.headers["DPoP-Nonce"] = endpoint.nonces.issue()
    return response


def _client_request(
    request: Any, name: str
) -> tuple[AuthorizationServer, TokenEndpoint] | Response:
    server = get_server(request.registry)
    endpoint = server.token
    if endpoint is None:
        return HTTPNotFound()
    if request.method != "POST":
        return method_not_allowed(("POST",))
    return server, endpoint


def revocation_view(request: Any) -> Response:
    """``POST {prefix}/revoke`` (RFC 7009 §2): ``200`` with an empty body whether or not
    anything was revoked (§2.2); errors as RFC 6749 §5.2. CORS-enabled (D17)."""
    if request.method == "OPTIONS" and get_server(request.registry).token is not None:
        return cors_preflight()
    return with_cors(_revoke(request))


def _revoke(request: Any) -> Response:
    found = _client_request(request, "revocation")
    if isinstance(found, Response):
        return found
    server, endpoint = found
    try:
        check_https(request, server.adapter, server.settings.require_https)
        form = parse_form(request, server.settings.max_body_bytes)
        client = authenticate(request, server, endpoint, form, "revocation")
        endpoint.admin.revoke(form, client, request.attesto_stores)
    except OAuthError as error:
        return oauth_error_response(error, request)
    return mark_no_store(Response(status=200, body=b""))


def introspection_view(request: Any) -> Response:
    """``POST {prefix}/introspect`` (RFC 7662 §2): the JSON response, or the RFC 9701 JWT
    when the caller's ``Accept`` asks for ``application/token-introspection+jwt``."""
    found = _client_request(request, "introspection")
    if isinstance(found, Response):
        return found
    server, endpoint = found
    try:
        check_https(request, server.adapter, server.settings.require_https)
        form = parse_form(request, server.settings.max_body_bytes)
        client = authenticate(request, server, endpoint, form, "introspection")
        body = endpoint.admin.introspect(form, client, request.attesto_stores)
    except OAuthError as error:
        return oauth_error_response(error, request)
    if accepts_jwt_response(request.headers.get("Accept")):
        # RFC 9701 §6: the client's registered algorithm, which registration accepts only
        # when the keystore signs with it (a host-configured client is the host's to keep
        # consistent: a missing key is a configuration error, logged as a server error).
        alg = client.client.introspection_signed_response_alg
        jwt = endpoint.introspection_jwt.encode(
            body, audience=client.client_id, alg=cast("Algorithm | None", alg)
        )
        response = Response(
            body=jwt.encode("ascii"), content_type=INTROSPECTION_JWT_MEDIA_TYPE, charset=None
        )
        return mark_no_store(response)
    return json_response(body)
