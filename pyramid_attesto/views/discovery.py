"""Discovery documents (RFC 8414 §3, OpenID Connect Discovery 1.0 §4), served at the root of
the application whatever the route prefix (DESIGN.md D3).

The routes match every path under the well-known names; the view answers only at the paths
derived from the issuer (:attr:`~pyramid_attesto.server.AuthorizationServer.metadata_paths`)
and ``404`` elsewhere. Documents are public, cacheable for a short while, and readable by
browser-based clients without credentials (DESIGN.md D17).
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response

from pyramid_attesto.responses import json_response
from pyramid_attesto.server import get_server

__all__ = ["METADATA_MAX_AGE", "metadata_view"]

METADATA_MAX_AGE = 300


def metadata_view(request: Any) -> Response:
    document = get_server(request.registry).document(request.path)
    if document is None:
        return HTTPNotFound()
    response = json_response(document, no_store=False)
    response.cache_control.public = True
    response.cache_control.max_age = METADATA_MAX_AGE
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
