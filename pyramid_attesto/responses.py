"""Rendering of protocol results and errors (the Pyramid side of core's error tree).

DESIGN.md rule 3: attesto's protocol views *return* their OAuth error responses rather than
raise them, so pyramid_tm commits the request's must-persist writes (a consumed code, a
revoked family, a replay record) together with the error. The ``x-tm: commit`` header makes a
host's ``tm.commit_veto`` keep them too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pyramid.response import Response

from .core.errors import OAuthError

__all__ = ["json_response", "oauth_error_response"]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    body: object,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    no_store: bool = True,
) -> Response:
    """A compact JSON response; ``no_store`` adds ``Cache-Control: no-store`` (RFC 6749 §5.1)."""
    response = Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii"),
        status=status,
        content_type="application/json",
        charset=None,
    )
    if no_store:
        response.headers.update(NO_STORE)
    if headers:
        response.headers.update(headers)
    return response


def oauth_error_response(error: OAuthError) -> Response:
    """The RFC 6749 §5.2 JSON error response of ``error``, committed by pyramid_tm."""
    response = json_response(error.to_dict(), status=error.status, headers=error.headers)
    response.headers["x-tm"] = "commit"
    return response
