"""Resource-server challenges: ``WWW-Authenticate`` building and the forbidden view.

What a refused request gets (DESIGN.md D2, rule 7):

- no credentials: ``401`` with a challenge *without* ``error`` (RFC 6750 §3.1), naming every
  scheme the resource accepts (``Bearer, DPoP algs="ES256 ..."``, RFC 9449 §7.2) with the
  ``scope`` hint and ``resource_metadata`` (RFC 9728 §5.1);
- a malformed request: ``400 invalid_request``; a bad, expired or wrongly bound token:
  ``401 invalid_token``; a bad DPoP proof: ``401 invalid_dpop_proof``; a missing or stale
  resource-server nonce: ``401 use_dpop_nonce`` with a fresh ``DPoP-Nonce`` (RFC 9449 §9);
- a token without the required scope: ``403 insufficient_scope`` with the required ``scope``
  (RFC 6750 §3.1); a token whose authentication event is too weak or too old: ``401
  insufficient_user_authentication`` with ``acr_values`` / ``max_age`` (RFC 9470 §3).

Every auth-param value is sent as an RFC 9110 §5.6.4 ``quoted-string`` (``"`` and ``\\``
backslash-escaped); a value that cannot be carried in a header field at all (a control
character, non-ASCII) is a bug and raises :class:`ValueError` rather than being sent.

The forbidden view registered here matches only :class:`AttestoDenied` results (a view
predicate), so a host's own forbidden view (a redirect to its login page) keeps handling
every other denial. Error responses carry an RFC 6749 §5.2 JSON body and
``Cache-Control: no-store``; a 2xx response never carries ``WWW-Authenticate``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pyramid.security import Denied
from pyramid.threadlocal import get_current_request

from .core.errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    UseDPoPNonce,
)
from .responses import json_response, oauth_error_response, response_hooks

if TYPE_CHECKING:
    from pyramid.response import Response

__all__ = [
    "RESOURCE_ERRORS",
    "AttestoDenialPredicate",
    "AttestoDenied",
    "Challenge",
    "ChallengeOptions",
    "Scheme",
    "WWWAuthenticate",
    "build_challenges",
    "challenge_response",
    "forbidden_view",
    "quote",
    "render_challenges",
    "www_authenticate",
]

logger = logging.getLogger("pyramid_attesto")

Scheme = Literal["Bearer", "DPoP"]

RESOURCE_ERRORS = (
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    InvalidDPoPProof,
    UseDPoPNonce,
    InsufficientUserAuthentication,
)
"""The errors a protected resource answers with a challenge (RFC 6750 §3.1, RFC 9449 §7.1 and
§9, RFC 9470 §3)."""

# RFC 9110 §5.6.2 token (auth-param names and scheme names) and §5.6.4 qdtext / quoted-pair:
# HTAB, SP, VCHAR; obs-text (non-ASCII) is refused here on purpose.
_TOKEN = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_QUOTABLE = re.compile(r"\A[\t\x20-\x7e]*\Z")


def quote(value: str) -> str:
    """``value`` as an RFC 9110 §5.6.4 quoted-string.

    >>> quote('say "hi" \\\\ bye')
    '"say \\\\"hi\\\\" \\\\\\\\ bye"'
    """
    if not _QUOTABLE.match(value):
        raise ValueError("a WWW-Authenticate parameter may not hold control or non-ASCII text")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` field: a scheme and its auth-params, in order.

    Each parameter name may occur once (RFC 9110 §11.2, case-insensitively): a challenge
    repeating one (two ``realm``) raises :class:`ValueError` when rendered.
    """

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def render(self) -> str:
        if not _TOKEN.match(self.scheme):
            raise ValueError(f"bad auth-scheme {self.scheme!r}")
        if not self.params:
            return self.scheme
        parts = []
        seen = set()
        for name, value in self.params:
            if not _TOKEN.match(name):
                raise ValueError(f"bad auth-param name {name!r}")
            if name.lower() in seen:
                raise ValueError(f"the auth-param {name!r} is repeated")
            seen.add(name.lower())
            parts.append(f"{name}={quote(value)}")
        return f"{self.scheme} {', '.join(parts)}"


def render_challenges(challenges: Iterable[Challenge]) -> str:
    """The ``WWW-Authenticate`` field value carrying several challenges (RFC 9110 §11.6.1)."""
    return ", ".join(c.render() for c in challenges)


@dataclass(frozen=True, slots=True)
class ChallengeOptions:
    """What every challenge of one resource server carries.

    ``dpop_algs`` is ``()`` when the resource does not accept DPoP; ``bearer`` is ``False``
    when it accepts only DPoP-bound tokens (``dpop_bound_access_tokens_required``).
    """

    realm: str | None = None
    dpop_algs: tuple[str, ...] = ()
    bearer: bool = True

    def __post_init__(self) -> None:
        if self.realm is not None:
            quote(self.realm)  # refuse an unsendable realm at configuration time
        if not self.bearer and not self.dpop_algs:
            raise ValueError("a resource must accept Bearer or DPoP")


class AttestoDenied(Denied):  # type: ignore[misc]  # pyramid is untyped
    """A :class:`pyramid.security.Denied` from the resource-server policy.

    It carries what the challenge needs: the OAuth error (``None`` when the request had no
    credentials at all), the scheme the client used, the scopes the view requires and, for
    RFC 9470 step-up, the ``acr_values`` / ``max_age`` it asks for. ``status`` is the HTTP
    status the forbidden view answers with (400, 401 or 403).
    """

    error: OAuthError | None
    scheme: Scheme | None
    required_scopes: tuple[str, ...]
    acr_values: tuple[str, ...]
    max_age: int | None
    resource_metadata: str | None

    def __new__(
        cls,
        error: OAuthError | None = None,
        *,
        scheme: Scheme | None = None,
        required_scopes: Sequence[str] = (),
        acr_values: Sequence[str] = (),
        max_age: int | None = None,
        resource_metadata: str | None = None,
    ) -> AttestoDenied:
        reason = "no credentials" if error is None else (error.reason or error.error)
        inst: AttestoDenied = super().__new__(cls, "attesto: %s", reason)
        inst.error = error
        inst.scheme = scheme
        inst.required_scopes = tuple(required_scopes)
        inst.acr_values = tuple(acr_values)
        inst.max_age = max_age
        inst.resource_metadata = resource_metadata
        return inst

    @property
    def status(self) -> int:
        return 401 if self.error is None else self.error.status

    @property
    def reason(self) -> str:
        """A short machine word for logs and events (never a secret)."""
        if self.error is None:
            return "no_credentials"
        return self.error.reason or self.error.error


def build_challenges(denied: AttestoDenied, options: ChallengeOptions) -> list[Challenge]:
    """The challenges answering ``denied``.

    Without an error, every accepted scheme is offered (RFC 9449 §7.2). With an error, the
    challenge is in the scheme the client must use: DPoP for a DPoP request, for a
    ``use_dpop_nonce`` and for a DPoP-bound token presented as Bearer; Bearer otherwise
    (or DPoP alone when Bearer is not accepted).
    """
    error = denied.error
    common: list[tuple[str, str]] = []
    if error is not None:
        common.append(("error", error.error))
        if error.description:
            common.append(("error_description", error.description))
        if error.uri:
            common.append(("error_uri", error.uri))
    scope = _scope_hint(denied)
    if scope:
        common.append(("scope", scope))
    if isinstance(error, InsufficientUserAuthentication) or denied.acr_values:
        if denied.acr_values:
            common.append(("acr_values", " ".join(denied.acr_values)))
        if denied.max_age is not None:
            common.append(("max_age", str(denied.max_age)))
    if denied.resource_metadata:
        common.append(("resource_metadata", denied.resource_metadata))

    realm = (("realm", options.realm),) if options.realm is not None else ()
    algs = (("algs", " ".join(options.dpop_algs)),) if options.dpop_algs else ()

    if error is None:
        challenges = []
        if options.bearer:
            challenges.append(Challenge("Bearer", (*realm, *common)))
        if options.dpop_algs:
            challenges.append(Challenge("DPoP", (*realm, *common, *algs)))
        return challenges
    scheme = denied.scheme
    if isinstance(error, UseDPoPNonce) or not options.bearer:
        scheme = "DPoP"
    elif not options.dpop_algs or scheme is None:
        scheme = "Bearer"
    if scheme == "DPoP":
        return [Challenge("DPoP", (*realm, *common, *algs))]
    return [Challenge("Bearer", (*realm, *common))]


def _scope_hint(denied: AttestoDenied) -> str:
    error = denied.error
    if isinstance(error, InsufficientScope) and error.scope:
        return error.scope
    return " ".join(denied.required_scopes)


def challenge_body(denied: AttestoDenied) -> Mapping[str, Any]:
    """The JSON body: the RFC 6749 §5.2 error object, ``{}`` when there was no credential."""
    if denied.error is None:
        return {}
    body: dict[str, Any] = dict(denied.error.to_dict())
    if isinstance(denied.error, InsufficientScope):
        scope = _scope_hint(denied)
        if scope:
            body["scope"] = scope
    return body


class WWWAuthenticate(Protocol):
    """``attesto.www_authenticate``: adds or alters challenge parameters.

    Called with the Pyramid request, the challenges attesto answers with (a tuple of
    :class:`Challenge`, in order) and the :class:`~pyramid_attesto.core.errors.OAuthError`
    (``None`` for a request without credentials); returns the challenges to send. Used for
    the resource server's and UserInfo's challenges (RFC 6750 §3, RFC 9449 §7), for the
    registration endpoints' ``Bearer`` challenge (RFC 7591, RFC 7592) and for the ``Basic``
    challenge of a failed client authentication at the token, PAR, revocation and
    introspection endpoints (``Basic realm="oauth", charset="UTF-8"`` with an
    ``invalid_client`` error, RFC 6749 §5.2). For example, a realm of your own on every
    challenge (replacing attesto's, since a parameter may occur once per challenge)::

        def www_authenticate(request, challenges, error):
            return [
                Challenge(c.scheme, (("realm", "api"), *[p for p in c.params if p[0] != "realm"]))
                for c in challenges
            ]

    Keep the schemes and the ``error`` parameter: clients act on them (a ``DPoP``
    ``use_dpop_nonce`` challenge is how a client learns to retry). A hook that raises or
    returns something that cannot be sent (no challenge, a repeated parameter, a control
    character) is logged and attesto's challenges are sent; so is one that drops the
    ``Basic`` challenge of a client authentication (RFC 6749 §5.2: the challenge matches the
    scheme the client used).
    """

    def __call__(
        self, request: Any, challenges: tuple[Challenge, ...], error: OAuthError | None
    ) -> Sequence[Challenge]: ...


def www_authenticate(
    request: Any,
    challenges: Sequence[Challenge],
    error: OAuthError | None,
    *,
    require_scheme: str | None = None,
) -> str:
    """The ``WWW-Authenticate`` value of ``challenges``, after the host's
    ``attesto.www_authenticate`` hook (if any). With ``require_scheme``, the hook's
    challenges must still offer that scheme (the ``Basic`` of client authentication)."""
    default = render_challenges(challenges)
    hook = response_hooks(request).www_authenticate
    if hook is None:
        return default
    try:
        altered = tuple(hook(request, tuple(challenges), error))
        if not altered or not all(isinstance(c, Challenge) for c in altered):
            raise TypeError("the hook must return one or more Challenge values")
        if require_scheme is not None and not any(
            c.scheme.lower() == require_scheme.lower() for c in altered
        ):
            raise ValueError(f"the hook dropped the {require_scheme} challenge")
        return render_challenges(altered)
    except Exception:
        logger.exception("pyramid_attesto: attesto.www_authenticate failed; sending ours")
        return default


def challenge_response(
    denied: AttestoDenied, options: ChallengeOptions, request: Any = None
) -> Response:
    """The complete response to a denial: status, ``WWW-Authenticate``, headers, JSON body.

    An error that is not a resource-access error (``temporarily_unavailable`` when the
    authorization server's keys cannot be fetched, a full store) is answered with its own
    status and JSON body and no challenge: there is nothing the client could do differently.
    The body goes through the host's ``attesto.send_error`` envelope, the challenge through
    its ``attesto.www_authenticate`` hook (:mod:`pyramid_attesto.responses`).
    """
    if request is None:
        request = get_current_request()
    error = denied.error
    if error is not None and not isinstance(error, RESOURCE_ERRORS):
        return oauth_error_response(error, request, commit=False)
    challenge = www_authenticate(request, build_challenges(denied, options), error)
    if error is None:
        return json_response({}, status=denied.status, headers={"WWW-Authenticate": challenge})
    # DPoP-Nonce travels in error.headers (RFC 9449 §9).
    return oauth_error_response(
        error,
        request,
        body=challenge_body(denied),
        headers={"WWW-Authenticate": challenge},
        commit=False,
    )


class AttestoDenialPredicate:
    """View predicate ``attesto_denial=True``: the exception is an attesto denial.

    Used on the forbidden view so that a host's own forbidden view keeps every other denial.
    """

    def __init__(self, val: object, config: object) -> None:
        if not isinstance(val, bool):
            raise TypeError("attesto_denial takes True or False")
        self.val = val

    def text(self) -> str:
        return f"attesto_denial = {self.val}"

    phash = text

    def __call__(self, context: object, request: object) -> bool:
        return isinstance(getattr(context, "result", None), AttestoDenied) is self.val


def forbidden_view(exc: Any, request: Any) -> Response:
    """The forbidden view for attesto denials (registered with ``attesto_denial=True``)."""
    from .policy import resource_server  # the policy module imports this one

    denied: AttestoDenied = exc.result
    return challenge_response(denied, resource_server(request.registry).challenge_options, request)
