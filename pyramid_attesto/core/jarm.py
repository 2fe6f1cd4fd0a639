"""Authorization responses: how a code or an error reaches the client's redirect URI, in every
response mode, including the signed responses of JARM (JWT Secured Authorization Response
Mode for OAuth 2.0, OpenID Foundation final, 2022).

Plain modes (RFC 6749 §4.1.2 and §4.1.2.1, OAuth 2.0 Multiple Response Type Encoding
Practices §2.1, OAuth 2.0 Form Post Response Mode §2):

- ``query``: the parameters are added to the redirect URI's query, keeping any query it
  already has (RFC 6749 §3.1.2); the default for the code flow;
- ``fragment``: the parameters in the fragment. Off by default (the authorization policy
  does not enable it): a code flow client reads its query just as well, and a fragment is
  readable by every script on the redirect page. FAPI 2.0 allows only ``query`` and the
  JARM modes for the code flow;
- ``form_post``: the parameters as the fields of a form that the user agent posts to the
  redirect URI (the HTML page itself is the wiring's, with DESIGN.md D15's headers).

Every plain response, success or error, carries ``iss`` (RFC 9207 §2).

JARM modes (§2.3): ``query.jwt``, ``fragment.jwt`` and ``form_post.jwt`` carry a single
``response`` parameter, a JWT signed with the keystore's active key for the client's
``authorization_signed_response_alg`` (default: the keystore's default algorithm). ``jwt`` is
``query.jwt`` for the code flow (§2.3.4; resolved by the request validation). The JWT's claims
are ``iss``, ``aud`` (the client_id), ``exp`` and the response parameters: ``code`` and
``state``, or ``error``, ``error_description`` and ``state`` (§2.1 and §2.2). Its lifetime is
short: 300 seconds by default, at most the 10 minutes §2.1 recommends. The ``iss`` claim
plays the role of RFC 9207's parameter.

The JWT's ``typ`` is ``JWT``. JARM defines no media type, and the common client libraries
verify JARM responses with a generic JWT processor that accepts ``JWT`` or no ``typ`` only (a
distinct value such as ``oauth-authz-resp+jwt`` would make them refuse every response). It is
not confused with our other JWTs: the access-token verifier accepts only ``at+jwt`` (RFC 9068
§4), and the ID-token verifier (the other ``JWT``) needs ``sub`` and ``iat``, which a JARM
response never has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from .authorization import RedirectableAuthorizationError, ResponseTarget
from .clock import Clock
from .jwt import encode_jwt
from .keys import Algorithm, Keystore

__all__ = [
    "DEFAULT_JARM_LIFETIME",
    "JARM_TYP",
    "MAX_JARM_LIFETIME",
    "AuthorizationResponse",
    "FormPostResponse",
    "JARMEncoder",
    "RedirectResponse",
    "error_response",
    "respond",
    "success_parameters",
    "success_response",
]

JARM_TYP: Final = "JWT"
"""The ``typ`` of a JARM response (see the module documentation for why it is not distinct)."""
DEFAULT_JARM_LIFETIME: Final = 300
MAX_JARM_LIFETIME: Final = 600
"""JARM §2.1: a maximum lifetime of 10 minutes is recommended."""

_JWT_MODES: Final = frozenset({"query.jwt", "fragment.jwt", "form_post.jwt"})


@dataclass(frozen=True, slots=True)
class RedirectResponse:
    """Send the user agent to ``location`` (303 after a POST, DESIGN.md D15)."""

    location: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class FormPostResponse:
    """Render a page that auto-posts ``fields`` to ``action`` (Form Post Response Mode §2)."""

    action: str
    fields: Mapping[str, str] = field(repr=False)


AuthorizationResponse = RedirectResponse | FormPostResponse


class JARMEncoder:
    """Signs JARM responses for one issuer with a keystore's active keys."""

    def __init__(
        self,
        keystore: Keystore,
        *,
        issuer: str,
        clock: Clock,
        lifetime: int = DEFAULT_JARM_LIFETIME,
    ) -> None:
        if not 0 < lifetime <= MAX_JARM_LIFETIME:
            raise ValueError(f"a JARM lifetime is 1 to {MAX_JARM_LIFETIME} seconds")
        self.keystore = keystore
        self.issuer = issuer
        self.clock = clock
        self.lifetime = lifetime

    def encode(
        self, target: ResponseTarget, parameters: Mapping[str, str], alg: Algorithm | None = None
    ) -> str:
        """The signed response JWT for ``parameters`` (JARM §2.1, §2.2); ``alg`` is the
        client's ``authorization_signed_response_alg`` (``None``: the keystore default)."""
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": target.client_id,
            "exp": int(self.clock.now()) + self.lifetime,
        }
        for name, value in parameters.items():
            if name not in ("iss", "aud", "exp"):
                claims[name] = value
        return encode_jwt(self.keystore.signer(alg), JARM_TYP, claims)


def success_parameters(target: ResponseTarget, code: str) -> dict[str, str]:
    """``code``, ``state`` and ``iss`` (RFC 6749 §4.1.2, RFC 9207 §2)."""
    parameters = {"code": code}
    if target.state is not None:
        parameters["state"] = target.state
    parameters["iss"] = target.issuer
    return parameters


def respond(
    target: ResponseTarget,
    parameters: Mapping[str, str],
    *,
    jarm: JARMEncoder | None = None,
    alg: Algorithm | None = None,
) -> AuthorizationResponse:
    """Deliver ``parameters`` at ``target`` in its response mode.

    A JARM mode needs ``jarm`` (a :class:`ValueError` otherwise: the authorization policy
    enables those modes only with an encoder, DESIGN.md D24).
    """
    mode: str = target.response_mode
    if mode in _JWT_MODES:
        if jarm is None:
            raise ValueError(f"response mode {mode} needs a JARM encoder")
        parameters = {"response": jarm.encode(target, parameters, alg)}
        mode = mode.removesuffix(".jwt")
    if mode == "form_post":
        return FormPostResponse(target.redirect_uri, MappingProxyType(dict(parameters)))
    if mode == "fragment":
        return RedirectResponse(_with_fragment(target.redirect_uri, parameters))
    return RedirectResponse(_with_query(target.redirect_uri, parameters))


def success_response(
    target: ResponseTarget,
    code: str,
    *,
    jarm: JARMEncoder | None = None,
    alg: Algorithm | None = None,
) -> AuthorizationResponse:
    """The successful authorization response carrying ``code``."""
    return respond(target, success_parameters(target, code), jarm=jarm, alg=alg)


def error_response(
    error: RedirectableAuthorizationError,
    *,
    jarm: JARMEncoder | None = None,
    alg: Algorithm | None = None,
) -> AuthorizationResponse:
    """The error response for ``error`` at its target (RFC 6749 §4.1.2.1, JARM §2.2)."""
    return respond(error.target, error.response_parameters(), jarm=jarm, alg=alg)


def _with_query(uri: str, parameters: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = urlencode(parameters)
    if parts.query:
        # RFC 6749 §3.1.2: the registered query component is retained.
        query = f"{parts.query}&{query}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _with_fragment(uri: str, parameters: Mapping[str, str]) -> str:
    return f"{uri.partition('#')[0]}#{urlencode(parameters)}"
