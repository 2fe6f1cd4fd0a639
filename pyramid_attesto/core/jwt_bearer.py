"""JWT authorization grants: RFC 7523 §2.1 and §3, and the Identity Assertion JWT
Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant; MCP
Enterprise-Managed Authorization, SEP-990).

A client posts ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with an
``assertion`` signed by an issuer this server trusts (a :class:`TrustedIssuer`, with an
inline JWK Set or a ``jwks_uri`` fetched through the outbound-fetch guard and cached). The
assertion's ``typ`` picks the profile:

- ``oauth-id-jag+jwt``: an ID-JAG, which the issuer (an enterprise IdP) made for one client
  and one resource. Required: ``iss``, ``sub``, ``aud`` = this server's issuer (a string or a
  one-element array), ``client_id`` = the authenticated client, ``jti``, ``exp``, ``iat``.
  ``resource`` is an audience ceiling; ``scope`` a scope ceiling.
- absent or ``JWT``: a plain RFC 7523 assertion, accepted only from issuers configured for
  it. ``aud`` must name this server (its issuer, or its token endpoint URL when configured);
  ``client_id``, when present, must be the authenticated client; ``jti``, when present, is
  single use.
- anything else is refused (RFC 8725 §3.11: a JWT minted for another purpose).

Every failure of the assertion is ``invalid_grant`` (RFC 7521 §4.1.1, RFC 7523 §3.1) with a
``reason`` for logs: ``untrusted_issuer``, ``wrong_typ``, ``bad_signature``, ``wrong_aud``,
``expired``, ``not_yet_valid``, ``client_id_mismatch``, ``replay``, ... A ``resource``
outside the ceiling is ``invalid_target``; a broader scope ``invalid_scope``.

Order (so that a refused request burns nothing): the assertion is verified, the target, the
scope and the binding are decided, the host's :class:`AssertionPolicy` runs, then the
``jti`` is recorded as used (keyed ``sha256(iss ":" jti)`` until ``exp`` plus leeway, through
the :class:`~.stores.ReplayStore`), and the host's :class:`SubjectResolver` maps the
assertion's subject to a local principal last. Sender constraint per DESIGN.md D9: an
assertion with ``cnf`` yields a token bound to the same key. No refresh token is issued:
the client gets a fresh assertion instead (the IdP keeps control).

Only the header members ``alg``, ``typ`` and ``kid`` are used: ``jku``, ``x5u``, ``x5c`` and
``jwk`` never select a key (DESIGN.md D6), and ``crit`` is refused.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NoReturn, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import CompactSignature, JWSRegistry

from .binding import PresentedKeys, TokenBinding, bind_token
from .client_auth import DEFAULT_ASSERTION_ALGORITHMS, SUPPORTED_ASSERTION_ALGORITHMS, KeySetCache
from .clients import Client
from .clock import Clock
from .encoding import b64url_decode
from .errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, UnauthorizedClient
from .jwt import AllowListRegistry, normalize_typ
from .outbound import RemoteKeySets
from .scopes import GrantedScopes, ScopeCatalog, narrow, parse_scope
from .secret import sha256_b64url
from .stores import ReplayStore
from .tokens import AccessTokenClaims

__all__ = [
    "GRANT_TYPE",
    "ID_JAG_TYP",
    "AssertionPolicy",
    "IssuerKeys",
    "JWTBearerConfig",
    "JWTBearerGrant",
    "RemoteIssuerKeys",
    "SubjectResolver",
    "TrustedIssuer",
    "VerifiedAssertion",
    "inline_issuer_keys",
    "jwt_bearer_grant",
]

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG_TYP: Final = "oauth-id-jag+jwt"

Profile = Literal["id_jag", "jwt_bearer"]

_COMPACT: Final = re.compile(r"\A[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\Z")
_MAX_JTI: Final = 256
_MAX_KEYS_TRIED: Final = 8
_MAX_TARGET: Final = 2048


def _fail(description: str, reason: str) -> NoReturn:
    raise InvalidGrant(description, reason=reason)


_SIZES: Final = {"max_header_length": 4096, "max_payload_length": 16384}
_PARSE: Final = AllowListRegistry((), **_SIZES)
_REGISTRIES: Final[Mapping[str, JWSRegistry]] = {
    alg: AllowListRegistry((alg,), **_SIZES) for alg in SUPPORTED_ASSERTION_ALGORITHMS
}


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TrustedIssuer:
    """An issuer whose assertions this server accepts: its ``iss``, its keys (``jwks`` or
    ``jwks_uri``, not both), the algorithms allowed, and the profiles: ``id_jag`` (default
    on) and ``jwt_bearer`` (plain RFC 7523 assertions, default off)."""

    issuer: str
    jwks: Mapping[str, Any] | None = field(default=None, hash=False)
    jwks_uri: str | None = None
    algorithms: frozenset[str] = DEFAULT_ASSERTION_ALGORITHMS
    id_jag: bool = True
    jwt_bearer: bool = False

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("a trusted issuer needs its issuer identifier")
        if (self.jwks is None) == (self.jwks_uri is None):
            raise ValueError(f"trusted issuer {self.issuer}: give exactly one of jwks, jwks_uri")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError(f"trusted issuer {self.issuer}: jwks must be a JWK Set")
        if not self.algorithms or not set(self.algorithms) <= SUPPORTED_ASSERTION_ALGORITHMS:
            raise ValueError(f"trusted issuer {self.issuer}: algorithms must be asymmetric")
        if not (self.id_jag or self.jwt_bearer):
            raise ValueError(f"trusted issuer {self.issuer}: enable id_jag or jwt_bearer")


class IssuerKeys(Protocol):
    """Returns an issuer's JWK Set. ``refresh=True`` (at most once per assertion, for an
    unknown ``kid``) may refetch a ``jwks_uri``. ``None``: no keys available."""

    def __call__(
        self, issuer: TrustedIssuer, *, refresh: bool = False
    ) -> Mapping[str, Any] | None: ...


def inline_issuer_keys(issuer: TrustedIssuer, *, refresh: bool = False) -> Mapping[str, Any] | None:
    """The default :class:`IssuerKeys`: only keys configured inline."""
    return issuer.jwks


class RemoteIssuerKeys:
    """:class:`IssuerKeys` that fetches an issuer's ``jwks_uri`` through a
    :class:`~.outbound.RemoteKeySets` (the guard, a bounded cache honouring
    ``Cache-Control``, one refetch per interval for an unknown ``kid``, the last good set
    while the issuer is unreachable). Inline ``jwks`` are used as they are."""

    def __init__(self, key_sets: RemoteKeySets) -> None:
        self._key_sets = key_sets

    def __call__(self, issuer: TrustedIssuer, *, refresh: bool = False) -> Mapping[str, Any] | None:
        if issuer.jwks is not None or issuer.jwks_uri is None:
            return issuer.jwks
        return self._key_sets.get(issuer.jwks_uri, refresh=refresh)


@dataclass(frozen=True, kw_only=True)
class VerifiedAssertion:
    """An assertion whose signature and claims verified."""

    profile: Profile
    issuer: str
    subject: str
    client_id: str | None
    jti: str | None
    expires_at: int
    issued_at: int | None
    resources: tuple[str, ...]
    scopes: tuple[str, ...] | None
    """The ``scope`` ceiling, ``None`` when the assertion has none."""
    cnf: Mapping[str, Any] | None
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]
    claims: Mapping[str, Any] = field(repr=False)


class SubjectResolver(Protocol):
    """Maps an assertion's subject (the issuer's ``sub``, and whatever else it asserts, in
    ``assertion.claims``) to a local principal's ``sub``; ``None``: no such user here
    (``invalid_grant``). Called last, once everything else passed."""

    def resolve_subject(self, assertion: VerifiedAssertion, client: Client) -> str | None: ...


class AssertionPolicy(Protocol):
    """The host's say: the scopes to grant (a subset of ``scopes``) or ``None`` to refuse
    (``invalid_grant``). Runs before the ``jti`` is used up."""

    def authorize_assertion(
        self,
        client: Client,
        assertion: VerifiedAssertion,
        scopes: tuple[str, ...],
        audience: str,
    ) -> Sequence[str] | None: ...


@dataclass(frozen=True, kw_only=True)
class JWTBearerConfig:
    """The jwt-bearer grant of this server.

    ``issuer`` is this server's issuer identifier (the ``aud`` of an ID-JAG);
    ``token_endpoint`` is also accepted as the ``aud`` of plain RFC 7523 assertions when
    given. ``resources`` are the audiences tokens may be issued for (``default_resource``,
    else ``issuer``, when nothing narrower is named). ``max_lifetime`` bounds ``exp`` minus
    ``iat``; ``leeway`` is the clock skew allowed.
    """

    issuer: str
    trusted_issuers: Mapping[str, TrustedIssuer]
    subject_resolver: SubjectResolver
    keys: IssuerKeys = inline_issuer_keys
    token_endpoint: str | None = None
    resources: frozenset[str] = frozenset()
    default_resource: str | None = None
    catalog: ScopeCatalog = field(default_factory=lambda: ScopeCatalog.of(()))
    policy: AssertionPolicy | None = None
    max_lifetime: int = 300
    leeway: int = 30
    max_assertion_bytes: int = 8192
    key_cache: KeySetCache = field(default_factory=KeySetCache, compare=False, repr=False)

    def __post_init__(self) -> None:
        for iss, trusted in self.trusted_issuers.items():
            if iss != trusted.issuer:
                raise ValueError(f"trusted issuer {iss!r} is filed under another name")
        if self.max_lifetime <= 0 or self.leeway < 0 or self.max_assertion_bytes < 512:
            raise ValueError("assertion limits must be positive")

    @property
    def allowed_resources(self) -> frozenset[str]:
        extra = {self.issuer} | ({self.default_resource} if self.default_resource else set())
        return self.resources | extra


@dataclass(frozen=True, slots=True)
class JWTBearerGrant:
    """What the grant yields: the claims to mint and their binding. No refresh token."""

    claims: AccessTokenClaims
    binding: TokenBinding
    assertion: VerifiedAssertion
    issues_refresh_token: bool = False

    @property
    def token_type(self) -> str:
        return self.binding.token_type


# -- parsing and verification ----------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _json(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, binascii.Error, RecursionError):
        value = None
    if not isinstance(value, dict):
        _fail("the assertion is not a JWT", "malformed")
    return value


def _parse(assertion: str, limit: int) -> tuple[dict[str, Any], dict[str, Any], Profile]:
    if len(assertion) > limit:
        _fail("the assertion is too large", "too_large")
    if not _COMPACT.match(assertion):
        _fail("the assertion is not a compact JWS", "malformed")
    header_segment, payload_segment, _ = assertion.split(".")
    header = _json(header_segment)
    claims = _json(payload_segment)
    if "crit" in header or "b64" in header:
        _fail("the assertion uses an unsupported header", "crit")
    typ = header.get("typ")
    if typ is None:
        return header, claims, "jwt_bearer"
    if not isinstance(typ, str):
        _fail("the assertion typ is malformed", "wrong_typ")
    kind = normalize_typ(typ)
    if kind == ID_JAG_TYP:
        return header, claims, "id_jag"
    if kind == "jwt":
        return header, claims, "jwt_bearer"
    _fail("the assertion has the wrong typ", "wrong_typ")


def _verify_signature(
    assertion: str, header: Mapping[str, Any], trusted: TrustedIssuer, config: JWTBearerConfig
) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in trusted.algorithms:
        _fail("the assertion algorithm is not allowed", "alg_not_allowed")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        _fail("the assertion kid is malformed", "malformed")
    try:
        signed = jws.extract_compact(assertion.encode("ascii"), registry=_PARSE)
    except (JoseError, ValueError, TypeError):
        _fail("the assertion is not a valid JWS", "malformed")
    registry = _REGISTRIES[alg]
    for refresh in (False, True):
        jwks = config.keys(trusted, refresh=refresh)
        if jwks is None:
            _fail("the issuer's keys are unavailable", "issuer_keys_unavailable")
        try:
            keys = config.key_cache.get(jwks)
        except (JoseError, ValueError, TypeError, KeyError):
            _fail("the issuer's keys are invalid", "bad_issuer_jwks")
        candidates = _candidates(keys, alg, kid)
        for key in candidates[:_MAX_KEYS_TRIED]:
            if _valid(signed, key, registry):
                return
        if candidates or kid is None or trusted.jwks_uri is None:
            break
    _fail("the assertion signature is invalid", "bad_signature")


def _valid(signed: CompactSignature, key: Any, registry: JWSRegistry) -> bool:
    try:
        return jws.validate_compact(signed, key, registry=registry)
    except (JoseError, ValueError, TypeError):
        return False


def _candidates(keys: KeySet, alg: str, kid: str | None) -> list[Any]:
    key_type = _REGISTRIES[alg].algorithms[alg].key_type
    return [
        key
        for key in keys
        if key.key_type == key_type
        and key.get("use") in (None, "sig")
        and key.get("alg") in (None, alg)
        and (kid is None or key.kid == kid)
    ]


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            _fail(f"the assertion needs {name}", f"missing_{name}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(f"the assertion {name} is not a NumericDate", f"bad_{name}")
    return float(value)


def _string(
    claims: Mapping[str, Any], name: str, *, required: bool, limit: int = 2048
) -> str | None:
    value = claims.get(name)
    if value is None:
        if required:
            _fail(f"the assertion needs {name}", f"missing_{name}")
        return None
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        _fail(f"the assertion {name} is malformed", f"bad_{name}")
    return value


def _strings(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name)
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        _fail(f"the assertion {name} is malformed", f"bad_{name}")
    return tuple(values)


def _check_audience(claims: Mapping[str, Any], profile: Profile, config: JWTBearerConfig) -> None:
    aud = claims.get("aud")
    if profile == "id_jag":
        # The ID-JAG audience is this server's issuer: a string or a one-element array.
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        if aud != config.issuer:
            _fail("the assertion is not intended for this server", "wrong_aud")
        return
    accepted = {config.issuer} | ({config.token_endpoint} if config.token_endpoint else set())
    audiences = _strings(claims, "aud")
    if not any(a in accepted for a in audiences):
        _fail("the assertion is not intended for this server", "wrong_aud")


def _check_times(
    claims: Mapping[str, Any], profile: Profile, config: JWTBearerConfig, now: float
) -> tuple[float, float | None]:
    leeway = config.leeway
    exp = _number(claims, "exp", required=True)
    iat = _number(claims, "iat", required=profile == "id_jag")
    nbf = _number(claims, "nbf", required=False)
    assert exp is not None
    if now >= exp + leeway:
        _fail("the assertion has expired", "expired")
    if nbf is not None and nbf > now + leeway:
        _fail("the assertion is not valid yet", "not_yet_valid")
    if iat is not None and iat > now + leeway:
        _fail("the assertion was issued in the future", "issued_in_future")
    if exp - (iat if iat is not None else now) > config.max_lifetime:
        _fail("the assertion lifetime is too long", "lifetime_too_long")
    return exp, iat


def _verify(
    assertion: str, client: Client, config: JWTBearerConfig, now: float
) -> VerifiedAssertion:
    header, claims, profile = _parse(assertion, config.max_assertion_bytes)
    iss = claims.get("iss")
    trusted = config.trusted_issuers.get(iss) if isinstance(iss, str) else None
    if trusted is None:
        _fail("the assertion issuer is not trusted", "untrusted_issuer")
    if (profile == "id_jag" and not trusted.id_jag) or (
        profile == "jwt_bearer" and not trusted.jwt_bearer
    ):
        _fail("the assertion has the wrong typ for this issuer", "wrong_typ")
    _verify_signature(assertion, header, trusted, config)

    _check_audience(claims, profile, config)
    exp, iat = _check_times(claims, profile, config, now)
    subject = _string(claims, "sub", required=True)
    jti = _string(claims, "jti", required=profile == "id_jag", limit=_MAX_JTI)
    client_id = _string(claims, "client_id", required=profile == "id_jag")
    if client_id is not None and client_id != client.client_id:
        _fail("the assertion was made for another client", "client_id_mismatch")
    if "authorization_details" in claims:
        _fail("authorization_details are not supported in assertions", "authorization_details")
    scope = claims.get("scope")
    if scope is not None and not isinstance(scope, str):
        _fail("the assertion scope is malformed", "bad_scope")
    try:
        scopes = parse_scope(scope) if scope is not None else None
    except InvalidScope:
        _fail("the assertion scope is malformed", "bad_scope")
    cnf = claims.get("cnf")
    if cnf is not None and not isinstance(cnf, dict):
        _fail("the assertion cnf is malformed", "bad_cnf")
    auth_time = _number(claims, "auth_time", required=False)
    assert subject is not None
    return VerifiedAssertion(
        profile=profile,
        issuer=trusted.issuer,
        subject=subject,
        client_id=client_id,
        jti=jti,
        expires_at=math.ceil(exp),
        issued_at=int(iat) if iat is not None else None,
        resources=_strings(claims, "resource"),
        scopes=scopes,
        cnf=cnf,
        auth_time=int(auth_time) if auth_time is not None else None,
        acr=_string(claims, "acr", required=False),
        amr=_strings(claims, "amr"),
        claims=claims,
    )


# -- the grant -------------------------------------------------------------------------------


def _single(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"the {name} parameter is repeated", reason="repeated_parameter")
    return values[0] or None


def _target(
    form: Mapping[str, Sequence[str]], assertion: VerifiedAssertion, config: JWTBearerConfig
) -> str:
    requested = _single(form, "resource")
    if requested is not None and len(requested) > _MAX_TARGET:
        raise InvalidTarget("the resource is malformed", reason="malformed")
    ceiling = assertion.resources
    if ceiling:
        if requested is not None and requested not in ceiling:
            raise InvalidTarget(
                "the resource is outside what the assertion allows", reason="outside_ceiling"
            )
        if requested is None and len(ceiling) > 1:
            raise InvalidTarget(
                "the assertion names several resources: pick one", reason="ambiguous"
            )
        target = requested or ceiling[0]
    else:
        target = requested or config.default_resource or config.issuer
    if target not in config.allowed_resources:
        raise InvalidTarget("the resource is not served here", reason="unknown_resource")
    return target


def _scopes(
    form: Mapping[str, Sequence[str]],
    client: Client,
    assertion: VerifiedAssertion,
    config: JWTBearerConfig,
) -> tuple[str, ...]:
    requested = parse_scope(_single(form, "scope"))
    if assertion.scopes is not None:
        return narrow(assertion.scopes, requested or None, config.catalog)
    if requested:
        return requested
    return parse_scope(client.scope)


def jwt_bearer_grant(
    form: Mapping[str, Sequence[str]],
    client: Client,
    config: JWTBearerConfig,
    *,
    presented: PresentedKeys,
    replay: ReplayStore,
    clock: Clock,
) -> JWTBearerGrant:
    """Run the jwt-bearer grant for the authenticated ``client`` (see the module docs)."""
    if client.public:
        raise UnauthorizedClient(
            "the jwt-bearer grant is for confidential clients only", reason="public_client"
        )
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient(
            "the client is not registered for the jwt-bearer grant", reason="grant_not_registered"
        )
    assertion_value = _single(form, "assertion")
    if assertion_value is None:
        raise InvalidRequest("the assertion parameter is required", reason="missing_assertion")
    if form.get("authorization_details"):
        raise InvalidRequest(
            "authorization_details is not supported with this grant", reason="authorization_details"
        )
    now = clock.now()
    assertion = _verify(assertion_value, client, config, now)
    audience = _target(form, assertion, config)
    scopes = _scopes(form, client, assertion, config)
    binding = bind_token([assertion.cnf], presented, client)

    if config.policy is not None:
        granted = config.policy.authorize_assertion(client, assertion, scopes, audience)
        if granted is None:
            _fail("the assertion is not accepted for this client", "policy")
        allowed = GrantedScopes(scopes)
        if not all(allowed.holds_form(s) or allowed.covers(s, config.catalog) for s in granted):
            raise InvalidScope("the assertion policy granted more than allowed", reason="policy")
        scopes = tuple(dict.fromkeys(granted))

    if assertion.jti is not None:
        key = sha256_b64url(f"{assertion.issuer}:{assertion.jti}")
        if not replay.check_and_record(key, math.ceil(assertion.expires_at + config.leeway)):
            _fail("the assertion was already used", "replay")

    subject = config.subject_resolver.resolve_subject(assertion, client)
    if not subject:
        _fail("the assertion's subject is not known here", "unknown_subject")
    claims = AccessTokenClaims(
        subject=subject,
        client_id=client.client_id,
        audience=audience,
        scopes=scopes,
        cnf=binding.cnf,
        auth_time=assertion.auth_time,
        acr=assertion.acr,
        amr=assertion.amr,
        principal_kind="user",
    )
    return JWTBearerGrant(claims=claims, binding=binding, assertion=assertion)
