"""Well-known documents served at the root of the application (DESIGN.md D3).

- ``/.well-known/jwks.json``: the public JWK Set (RFC 7517 §5), cacheable for a short while
  so that a rotation (a new key published before it signs) reaches clients quickly.
"""

from __future__ import annotations

from typing import Any

from pyramid.response import Response

from pyramid_attesto.responses import json_response
from pyramid_attesto.runtime import get_attesto

__all__ = ["jwks_view"]

JWKS_MAX_AGE = 300


def jwks_view(request: Any) -> Response:
    jwks = get_attesto(request.registry).keystore.jwks()
    response = json_response(jwks, no_store=False)
    response.cache_control.public = True
    response.cache_control.max_age = JWKS_MAX_AGE
    return response
