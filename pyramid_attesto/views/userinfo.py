"""The UserInfo endpoint, ``GET``/``POST {prefix}/userinfo`` (OpenID Connect Core 1.0 §5.3).

The access token comes in the ``Authorization`` header, Bearer or DPoP (RFC 6750 §2.1,
RFC 9449 §7), and is verified like at any resource (:mod:`pyramid_attesto.core.resource`):
its ``aud`` must be the issuer (DESIGN.md D11), its binding is checked and the DPoP proof's
replay recorded last. The token must carry ``openid`` and a user subject. The claims come from
the host's :class:`~pyramid_attesto.core.host.ClaimsProvider`, filtered by the granted scopes;
``sub`` is always the token's. Refusals are RFC 6750 §3 / RFC 9449 §7 challenges.
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response

from pyramid_attesto.challenges import AttestoDenied, ChallengeOptions, challenge_response
from pyramid_attesto.core.errors import InsufficientScope, InvalidToken, OAuthError
from pyramid_attesto.core.resource import (
    Refusal,
    ResourceRequest,
    ResourceVerifier,
    parse_authorization,
)
from pyramid_attesto.responses import json_response, oauth_error_response
from pyramid_attesto.server import get_server
from pyramid_attesto.views._http import check_https, method_not_allowed

__all__ = ["userinfo_view"]


def _deny(request: Any, error: OAuthError | None, options: ChallengeOptions, **kw: Any) -> Response:
    response = challenge_response(AttestoDenied(error, **kw), options, request)
    response.headers["x-tm"] = "commit"
    return response


def userinfo_view(request: Any) -> Response:
    server = get_server(request.registry)
    endpoint = server.userinfo
    if endpoint is None:
        return HTTPNotFound()
    if request.method not in ("GET", "POST"):
        return method_not_allowed(("GET", "POST"))
    options = endpoint.challenge
    try:
        check_https(request, server.adapter, server.settings.require_https)
        header = request.headers.get("Authorization")
        credential = parse_authorization(header) if header else None
    except OAuthError as error:
        return oauth_error_response(error, request)
    if credential is None:
        return _deny(request, None, options)
    verifier = ResourceVerifier(
        tokens=endpoint.tokens,
        dpop=endpoint.dpop,
        replay=request.attesto_stores.replay,
        clock=server.clock,
    )
    dpop = request.headers.get("DPoP")
    result = verifier.verify(
        ResourceRequest(
            method=request.method,
            url=server.endpoint_urls["userinfo"],
            credential=credential,
            dpop=[dpop] if dpop is not None else [],
            certificate=lambda: server.adapter.presented_certificate(request.environ),
        )
    )
    if isinstance(result, Refusal):
        return _deny(request, result.error, options, scheme=result.scheme)
    token = result.token
    if "openid" not in token.scopes:
        missing = InsufficientScope("the access token lacks the openid scope", scope="openid")
        return _deny(request, missing, options, scheme=result.scheme, required_scopes=("openid",))
    if token.principal_kind not in (None, "user"):
        not_user = InvalidToken("the access token has no user", reason="not_a_user")
        return _deny(request, not_user, options, scheme=result.scheme)
    principals = server.host.principal_store
    if principals is not None:
        principal = principals.load_principal(token.subject)
        if principal is None or not principal.active:
            inactive = InvalidToken("the user is no longer active", reason="principal")
            return _deny(request, inactive, options, scheme=result.scheme)
    claims = dict(endpoint.claims.userinfo_claims(token.subject, token.scopes, {}))
    claims.pop("sub", None)
    return json_response({"sub": token.subject, **claims})
