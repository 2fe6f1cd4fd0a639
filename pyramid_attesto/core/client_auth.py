"""Client authentication at the token, PAR, revocation and introspection endpoints.

Implements RFC 6749 §2.3 (``client_secret_basic`` with the form-urlencoded credentials of
§2.3.1, ``client_secret_post``, one method per request), RFC 7521 §4.2 and RFC 7523 §2.2 and
§3 (JWT client assertions), OpenID Connect Core 1.0 §9 (``client_secret_jwt``,
``private_key_jwt``, ``none``), draft-ietf-oauth-rfc7523bis (``aud`` is the issuer), and the
RFC 8705 §2 methods ``tls_client_auth`` and ``self_signed_tls_client_auth`` (whose certificate
match is a :class:`~.clients.CertificateMatcher`).

The Pyramid views build a :class:`ClientAuthRequest` and call::

    authenticated = authenticate_client(
        request_value, store=store, replay_store=replay_store, policy=policy, clock=clock
    )

which returns an :class:`AuthenticatedClient` or raises :class:`~.errors.InvalidClient`
(authentication failed) or :class:`~.errors.InvalidRequest` (a repeated parameter).

Rules:

* The method is read from the request: an ``Authorization: Basic`` header, a
  ``client_secret`` form parameter, a ``client_assertion`` (with its ``client_assertion_type``),
  or none of these (``none`` or an mTLS method, chosen by the client's registration). More
  than one of them is ``invalid_client`` (RFC 6749 §2.3). A presented TLS certificate is not
  a method by itself: a ``private_key_jwt`` client may also use mTLS to bind its tokens
  (RFC 8705 §3).
* The method used must be the client's registered ``token_endpoint_auth_method`` and one the
  policy enables; a confidential client cannot authenticate with ``none``.
* A ``client_id`` form parameter that differs from the authenticated client is refused.
* Every failure is ``invalid_client``. A client that used the ``Authorization`` header gets
  401 with a ``Basic`` challenge (RFC 6749 §5.2 MUST). Other failures are 401 with the same
  challenge, which names the HTTP scheme the server supports (RFC 6749 §5.2) and keeps the
  401 valid HTTP (RFC 9110 §15.5.2: a 401 carries a challenge); when the policy does not
  enable ``client_secret_basic`` there is no scheme to name and the status is 400.
* Descriptions never carry a secret, an assertion or a client-chosen string; the ``reason``
  names the failed check for logs and tests.
* Client assertions: ``client_assertion_type`` is exactly
  ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``; the size is capped before
  decoding; ``alg`` comes from the policy's allow-list (``HS256`` only for
  ``client_secret_jwt``, through joserfc's ``OctKey``); keys come only from the client's
  registered JWK Set (``jku``, ``x5u``, ``jwk`` and ``x5c`` headers are ignored, DESIGN.md
  D6), and ``crit`` is refused; ``typ``, when present, is ``JWT`` or
  ``client-authentication+jwt``; ``iss`` = ``sub`` = the client; ``aud`` is the issuer, as a
  string or a one-element array (D7), or the endpoint URL only under
  ``accept_endpoint_audience``; ``exp`` is required, ``nbf`` and ``iat`` honoured, the
  lifetime bounded; ``jti`` is required and single use through the
  :class:`~.stores.ReplayStore`, keyed ``sha256(client_id ":" jti)`` until ``exp`` plus leeway.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote_plus

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from joserfc.jws import CompactSignature, JWSRegistry

from .clients import (
    ASSERTION_METHODS,
    AUTH_METHODS,
    MTLS_METHODS,
    AuthMethod,
    CertificateMatcher,
    Client,
    ClientStore,
    JWKSProvider,
    inline_jwks,
)
from .clock import Clock
from .encoding import b64url_decode, is_b64url
from .errors import ConfigurationError, InvalidClient, InvalidRequest
from .jwt import AllowListRegistry, loads_json
from .secret import sha256_b64url
from .stores import ReplayStore

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "DEFAULT_ASSERTION_ALGORITHMS",
    "DEFAULT_METHODS",
    "FAPI_ASSERTION_ALGORITHMS",
    "SUPPORTED_ASSERTION_ALGORITHMS",
    "AuthenticatedClient",
    "ClientAuthPolicy",
    "ClientAuthRequest",
    "KeySetCache",
    "authenticate_client",
    "client_auth_failure",
    "parse_basic_credentials",
]

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
"""RFC 7523 §2.2: the only ``client_assertion_type`` accepted."""

# Asymmetric algorithms a policy may allow for private_key_jwt (RFC 7518 §3.1, RFC 8037 §3.1,
# RFC 9864 §2.2). HS256 is the one algorithm of client_secret_jwt and is never configurable.
SUPPORTED_ASSERTION_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
    | {"EdDSA", "Ed25519"}
)
DEFAULT_ASSERTION_ALGORITHMS: frozenset[str] = frozenset({"ES256", "PS256", "RS256", "EdDSA"})
"""DESIGN.md D7."""
FAPI_ASSERTION_ALGORITHMS: frozenset[str] = frozenset({"PS256", "ES256", "EdDSA"})
"""FAPI 2.0 Security Profile §5.4.1."""
SECRET_JWT_ALGORITHM: Final = "HS256"  # noqa: S105 - an algorithm name

DEFAULT_METHODS: frozenset[AuthMethod] = frozenset(
    {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
)
"""Enabled unless configured otherwise: ``client_secret_jwt`` is opt-in (D7), and the mTLS
methods need a certificate matcher."""

_MIN_RSA_BITS = 2048
_MIN_HMAC_KEY_BYTES = 32  # RFC 7518 §3.2: a key at least as long as the hash output
_MAX_CLIENT_ID = 2048  # CIMD client_ids are URLs
_MAX_SECRET = 1024
_MAX_AUTHORIZATION = 4096
_MAX_JTI = 256
_MAX_KEYS_TRIED = 8
_AUTH_PARAMS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")

# RFC 6749 Appendix A.1 / A.2: client-id and client-secret are *VSCHAR.
_VSCHAR = re.compile(r"\A[\x20-\x7e]*\Z")
_BASIC = re.compile(r"\A([A-Za-z]+)(?: +(.*))?\Z", re.DOTALL)
_TOKEN68_B64 = re.compile(r"\A[A-Za-z0-9+/]+={0,2}\Z")
_COMPACT_JWS = re.compile(r"\A[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\Z")


# One-algorithm registries: the policy's allow-list decides which of them may be used.
_SIZES: Final = {"max_header_length": 4096, "max_payload_length": 8192}
_PARSE_REGISTRY = AllowListRegistry((), **_SIZES)
_REGISTRIES: Mapping[str, JWSRegistry] = {
    alg: AllowListRegistry((alg,), **_SIZES)
    for alg in (*SUPPORTED_ASSERTION_ALGORITHMS, SECRET_JWT_ALGORITHM)
}


class KeySetCache:
    """A bounded cache of imported client JWK Sets (DESIGN.md rule 11).

    Keyed by the canonical JSON of the set, so a client that rotates its keys gets a new
    entry and the old one ages out. Thread-safe; at most ``size`` sets are kept.
    """

    def __init__(self, size: int = 256) -> None:
        if size < 1:
            raise ValueError("the key set cache needs room for at least one set")
        self._size = size
        self._sets: OrderedDict[str, KeySet] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, jwks: Mapping[str, Any]) -> KeySet:
        """The imported key set; :class:`ValueError` or a ``JoseError`` if it is invalid."""
        cache_key = json.dumps(jwks, sort_keys=True, separators=(",", ":"))
        with self._lock:
            found = self._sets.get(cache_key)
            if found is not None:
                self._sets.move_to_end(cache_key)
                return found
        imported = _import_key_set(json.loads(cache_key))
        with self._lock:
            self._sets[cache_key] = imported
            while len(self._sets) > self._size:
                self._sets.popitem(last=False)
        return imported

    def __len__(self) -> int:
        return len(self._sets)


def _import_key_set(jwks: Any) -> KeySet:
    """Import the usable signature keys of a client's JWK Set.

    Symmetric keys never verify a ``private_key_jwt`` assertion, and RSA keys under 2048
    bits are too weak (RFC 7518 §3.3): both are dropped before import rather than imported
    with a warning.
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWK Set")
    usable = [
        key
        for key in jwks["keys"]
        if isinstance(key, dict) and key.get("kty") != "oct" and not _weak_rsa(key)
    ]
    return KeySet.import_key_set({"keys": usable}) if usable else KeySet([])


def _weak_rsa(key: Mapping[str, Any]) -> bool:
    if key.get("kty") != "RSA":
        return False
    modulus = key.get("n")
    if not isinstance(modulus, str):
        return False  # the import refuses it
    try:
        bits = int.from_bytes(b64url_decode(modulus), "big").bit_length()
    except ValueError:
        return False
    return bits < _MIN_RSA_BITS


@dataclass(frozen=True, kw_only=True)
class ClientAuthPolicy:
    """What the server accepts. Validated on construction (:class:`ConfigurationError`).

    ``methods`` is exactly what metadata advertises as
    ``token_endpoint_auth_methods_supported``; ``client_secret_jwt`` there also needs
    :meth:`.ClientStore.client_secret_for_jwt`, and the mTLS methods need
    ``certificate_matcher``. ``accept_endpoint_audience`` accepts the endpoint URL (and the
    token endpoint URL) as ``aud`` for libraries that still send it (RFC 7523 §3, RFC 9126
    §2); it is off by default and refused under the FAPI profile. ``leeway`` applies to
    ``exp``, ``nbf`` and ``iat``; ``max_assertion_lifetime`` bounds ``exp`` minus ``iat``
    (or minus now when ``iat`` is absent).
    """

    methods: frozenset[AuthMethod] = DEFAULT_METHODS
    assertion_algorithms: frozenset[str] = DEFAULT_ASSERTION_ALGORITHMS
    accept_endpoint_audience: bool = False
    max_assertion_lifetime: int = 300
    leeway: int = 30
    max_assertion_bytes: int = 8192
    jwks_provider: JWKSProvider = inline_jwks
    certificate_matcher: CertificateMatcher | None = None
    fapi: bool = False
    key_cache: KeySetCache = field(default_factory=KeySetCache, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", frozenset(self.methods))
        object.__setattr__(self, "assertion_algorithms", frozenset(self.assertion_algorithms))
        unknown = set(self.methods) - AUTH_METHODS
        if unknown:
            raise ConfigurationError(f"unknown client authentication methods: {sorted(unknown)}")
        if not self.methods:
            raise ConfigurationError("no client authentication method is enabled")
        bad_algs = set(self.assertion_algorithms) - SUPPORTED_ASSERTION_ALGORITHMS
        if bad_algs:
            raise ConfigurationError(
                f"client assertion algorithms must be asymmetric and supported: {sorted(bad_algs)}"
            )
        if "private_key_jwt" in self.methods and not self.assertion_algorithms:
            raise ConfigurationError("private_key_jwt is enabled with no assertion algorithm")
        if self.methods & MTLS_METHODS and self.certificate_matcher is None:
            raise ConfigurationError("the mTLS client authentication methods need a matcher")
        if self.max_assertion_lifetime <= 0 or self.leeway < 0 or self.max_assertion_bytes < 512:
            raise ConfigurationError("client assertion limits must be positive")
        if self.fapi:
            if self.accept_endpoint_audience:
                raise ConfigurationError("FAPI 2.0: the client assertion aud is the issuer only")
            if not self.methods <= {"private_key_jwt", *MTLS_METHODS}:
                raise ConfigurationError("FAPI 2.0 allows only private_key_jwt and mTLS")
            if not self.assertion_algorithms <= FAPI_ASSERTION_ALGORITHMS:
                raise ConfigurationError("FAPI 2.0 allows only PS256, ES256 and EdDSA")

    @classmethod
    def fapi_profile(
        cls,
        *,
        certificate_matcher: CertificateMatcher | None = None,
        jwks_provider: JWKSProvider = inline_jwks,
        **overrides: Any,
    ) -> ClientAuthPolicy:
        """The FAPI 2.0 Security Profile (§5.3.2.1, §5.4.1): ``private_key_jwt`` (and the
        mTLS methods when a matcher is given), PS256/ES256/EdDSA, ``aud`` = issuer only."""
        methods: set[AuthMethod] = {"private_key_jwt"}
        if certificate_matcher is not None:
            methods |= MTLS_METHODS
        settings: dict[str, Any] = {
            "methods": frozenset(methods),
            "assertion_algorithms": FAPI_ASSERTION_ALGORITHMS,
            "certificate_matcher": certificate_matcher,
            "jwks_provider": jwks_provider,
            "fapi": True,
        }
        settings.update(overrides)
        return cls(**settings)

    @property
    def token_endpoint_auth_methods_supported(self) -> list[str]:
        """For RFC 8414 metadata: exactly the enabled methods."""
        return sorted(self.methods)

    @property
    def token_endpoint_auth_signing_alg_values_supported(self) -> list[str]:
        """For RFC 8414 metadata: the assertion algorithms of the enabled methods."""
        algs: set[str] = set()
        if "private_key_jwt" in self.methods:
            algs |= self.assertion_algorithms
        if "client_secret_jwt" in self.methods:
            algs.add(SECRET_JWT_ALGORITHM)
        return sorted(algs)


@dataclass(frozen=True, kw_only=True)
class ClientAuthRequest:
    """The parts of an HTTP request client authentication reads (framework-free).

    ``form`` maps each body parameter to all its values, so a repeated parameter is visible.
    ``endpoint_url`` is the canonical URL of the endpoint being called; ``issuer`` the
    server's issuer identifier. ``client_certificate`` is what the certificate source
    produced (opaque here, handed to the :class:`~.clients.CertificateMatcher`).
    """

    form: Mapping[str, Sequence[str]]
    issuer: str
    endpoint_url: str
    authorization: str | None = None
    token_endpoint_url: str | None = None
    client_certificate: object | None = None


@dataclass(frozen=True)
class AuthenticatedClient:
    """A client that proved who it is, and how."""

    client: Client
    method: AuthMethod

    @property
    def client_id(self) -> str:
        return self.client.client_id


# -- helpers ---------------------------------------------------------------------------------


class _Failure:
    """Builds the ``invalid_client`` errors of one request with the right status."""

    def __init__(self, policy: ClientAuthPolicy, header_used: bool) -> None:
        self.header_used = header_used
        self.challenge = header_used or "client_secret_basic" in policy.methods

    def __call__(self, description: str, reason: str) -> InvalidClient:
        error = InvalidClient(description, reason=reason)
        if self.challenge:
            error.basic_challenge()
        else:
            error.status = 400
        return error


def client_auth_failure(
    policy: ClientAuthPolicy, description: str, reason: str, *, header_used: bool = False
) -> InvalidClient:
    """An ``invalid_client`` error with the status RFC 6749 §5.2 asks for: ``401`` with a
    ``Basic`` challenge when the client used the ``Authorization`` header or the server
    accepts ``client_secret_basic`` (RFC 9110 §15.5.2: a 401 always carries a challenge),
    ``400`` otherwise. For refusals after authentication (a public client where a
    confidential one is required)."""
    return _Failure(policy, header_used)(description, reason)


def _single(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name)
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError("ClientAuthRequest.form maps names to sequences of values")
    if len(values) > 1:
        # RFC 6749 §3.2: request parameters MUST NOT be included more than once.
        raise InvalidRequest(f"the {name} parameter is repeated", reason="repeated_parameter")
    if not values or not values[0]:
        # RFC 6749 §3.2: a parameter sent without a value is treated as omitted.
        return None
    return values[0]


def _valid_client_id(value: str) -> bool:
    return 0 < len(value) <= _MAX_CLIENT_ID and bool(_VSCHAR.match(value))


def parse_basic_credentials(authorization: str) -> tuple[str, str]:
    """Decode ``Authorization: Basic`` client credentials (RFC 6749 §2.3.1, RFC 7617 §2).

    The client id and secret are ``application/x-www-form-urlencoded`` before being joined
    by ``:`` and base64-encoded, so both are decoded with ``unquote_plus`` after the split
    (a secret may contain ``:`` as ``%3A`` and ``+`` as ``%2B``).

    >>> parse_basic_credentials("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")
    ('s6BhdRkqt3', 'gX1fBat3bV')

    Raises :class:`ValueError` (with a short reason) on anything malformed.
    """
    if len(authorization) > _MAX_AUTHORIZATION:
        raise ValueError("too_long")
    match = _BASIC.match(authorization.strip(" \t"))
    if match is None or match.group(1).lower() != "basic":
        raise ValueError("unsupported_scheme")
    token = (match.group(2) or "").strip(" ")
    if not _TOKEN68_B64.match(token) or len(token) % 4:
        raise ValueError("bad_base64")
    try:
        raw = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("bad_base64" if isinstance(exc, binascii.Error) else "not_utf8") from None
    user, colon, password = raw.partition(":")
    if not colon:
        raise ValueError("no_colon")
    try:
        client_id = unquote_plus(user, errors="strict")
        secret = unquote_plus(password, errors="strict")
    except UnicodeDecodeError:
        raise ValueError("not_utf8") from None
    return client_id, secret


def _typ_ok(typ: object) -> bool:
    # RFC 7515 §4.1.9: compared case-insensitively, "application/" may be omitted.
    if typ is None:
        return True
    if not isinstance(typ, str):
        return False
    value = typ.lower().removeprefix("application/")
    return value in ("jwt", "client-authentication+jwt")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return number if math.isfinite(number) else None


# -- the entry point -------------------------------------------------------------------------


def authenticate_client(
    request: ClientAuthRequest,
    *,
    store: ClientStore,
    replay_store: ReplayStore,
    policy: ClientAuthPolicy,
    clock: Clock,
) -> AuthenticatedClient:
    """Authenticate the client of ``request`` (see the module documentation for the rules).

    Raises :class:`~.errors.InvalidClient` when authentication fails and
    :class:`~.errors.InvalidRequest` when an authentication parameter is repeated.
    """
    header = request.authorization.strip() if request.authorization else None
    fail = _Failure(policy, header_used=bool(header))
    form_client_id = _single(request.form, "client_id")
    secret = _single(request.form, "client_secret")
    assertion = _single(request.form, "client_assertion")
    assertion_type = _single(request.form, "client_assertion_type")

    used = [
        name
        for name, present in (
            ("header", bool(header)),
            ("client_secret", secret is not None),
            ("client_assertion", assertion is not None or assertion_type is not None),
        )
        if present
    ]
    if len(used) > 1:
        raise fail("more than one client authentication method was used", reason="multiple_methods")
    if form_client_id is not None and not _valid_client_id(form_client_id):
        raise fail("the client_id is malformed", reason="malformed_client_id")

    if header:
        try:
            client_id, header_secret = parse_basic_credentials(header)
        except ValueError as exc:
            raise fail("malformed HTTP Basic client credentials", reason=str(exc)) from None
        if form_client_id is not None and form_client_id != client_id:
            raise fail("the client_id does not match the credentials", reason="client_id_mismatch")
        client = _load(store, client_id, "client_secret_basic", policy, fail)
        _check_secret(store, client, header_secret, fail)
        return AuthenticatedClient(client, "client_secret_basic")

    if secret is not None:
        if form_client_id is None:
            raise fail("client_secret needs a client_id", reason="missing_client_id")
        client = _load(store, form_client_id, "client_secret_post", policy, fail)
        _check_secret(store, client, secret, fail)
        return AuthenticatedClient(client, "client_secret_post")

    if assertion is not None or assertion_type is not None:
        return _authenticate_assertion(
            request,
            assertion,
            assertion_type,
            form_client_id,
            store=store,
            replay_store=replay_store,
            policy=policy,
            clock=clock,
            fail=fail,
        )

    if form_client_id is None:
        raise fail("no client authentication was included", reason="no_credentials")
    client = _load(store, form_client_id, None, policy, fail)
    method = client.token_endpoint_auth_method
    if method == "none":
        return AuthenticatedClient(client, "none")
    if method in MTLS_METHODS:
        return _authenticate_mtls(request, client, policy, fail)
    raise fail(
        "the client must authenticate with its registered method", reason="method_not_registered"
    )


def _load(
    store: ClientStore,
    client_id: str,
    method: AuthMethod | None,
    policy: ClientAuthPolicy,
    fail: _Failure,
) -> Client:
    """Load the client and check that ``method`` (``None``: its own) is registered and on."""
    if not _valid_client_id(client_id):
        raise fail("the client_id is malformed", reason="malformed_client_id")
    client = store.load_client(client_id)
    # The id is compared too: a case-insensitive lookup must not authenticate "Admin" as "admin".
    if client is None or client.client_id != client_id:
        raise fail("client authentication failed", reason="unknown_client")
    registered = client.token_endpoint_auth_method
    if method is not None and method != registered:
        raise fail(
            "the client must authenticate with its registered method",
            reason="method_not_registered",
        )
    if registered not in policy.methods:
        raise fail("the client's authentication method is not enabled", reason="method_disabled")
    return client


def _check_secret(store: ClientStore, client: Client, secret: str, fail: _Failure) -> None:
    if not secret or len(secret) > _MAX_SECRET or not _VSCHAR.match(secret):
        raise fail("client authentication failed", reason="malformed_secret")
    if not store.verify_client_secret(client, secret):
        raise fail("client authentication failed", reason="wrong_secret")


def _authenticate_mtls(
    request: ClientAuthRequest, client: Client, policy: ClientAuthPolicy, fail: _Failure
) -> AuthenticatedClient:
    method = client.token_endpoint_auth_method
    matcher = policy.certificate_matcher
    if matcher is None:  # pragma: no cover - the policy refuses mTLS methods without one
        raise fail("mutual TLS client authentication is not enabled", reason="method_disabled")
    if request.client_certificate is None:
        raise fail("a client certificate is required", reason="no_certificate")
    if method == "self_signed_tls_client_auth":
        jwks = policy.jwks_provider(client)
        ok = matcher(client, request.client_certificate, "self_signed_tls_client_auth", jwks)
    else:
        ok = matcher(client, request.client_certificate, "tls_client_auth", None)
    if not ok:
        raise fail("the client certificate does not match the client", reason="wrong_certificate")
    return AuthenticatedClient(client, method)


# -- JWT client assertions (RFC 7523 §2.2, §3) ----------------------------------------------


def _authenticate_assertion(
    request: ClientAuthRequest,
    assertion: str | None,
    assertion_type: str | None,
    form_client_id: str | None,
    *,
    store: ClientStore,
    replay_store: ReplayStore,
    policy: ClientAuthPolicy,
    clock: Clock,
    fail: _Failure,
) -> AuthenticatedClient:
    if assertion_type != CLIENT_ASSERTION_TYPE:
        raise fail("unsupported client_assertion_type", reason="wrong_assertion_type")
    if assertion is None:
        raise fail("the client_assertion is missing", reason="missing_assertion")
    if len(assertion) > policy.max_assertion_bytes:
        raise fail("the client assertion is too large", reason="too_large")
    obj, claims = _parse_assertion(assertion, fail)
    header = obj.headers()

    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(sub, str) or not isinstance(iss, str):
        raise fail("the client assertion needs iss and sub", reason="missing_iss_or_sub")
    if iss != sub:
        raise fail("the client assertion iss and sub differ", reason="iss_sub_mismatch")
    if form_client_id is not None and form_client_id != sub:
        raise fail("the client_id does not match the assertion", reason="client_id_mismatch")

    alg = header.get("alg")
    client = _load(store, sub, None, policy, fail)
    registered = client.token_endpoint_auth_method
    if registered not in ASSERTION_METHODS:
        raise fail(
            "the client must authenticate with its registered method",
            reason="method_not_registered",
        )
    allowed = (
        {SECRET_JWT_ALGORITHM}
        if registered == "client_secret_jwt"
        else set(policy.assertion_algorithms)
    )
    if client.token_endpoint_auth_signing_alg is not None:
        allowed &= {client.token_endpoint_auth_signing_alg}
    # The registered method picks the key type: an HS256 assertion is never checked against
    # a public key, nor an RS256 one against a shared secret (RFC 8725 §2.1, §3.1).
    if not isinstance(alg, str) or alg not in allowed:
        raise fail("the client assertion algorithm is not allowed", reason="alg_not_allowed")

    if registered == "client_secret_jwt":
        _verify_hmac(obj, client, store, fail)
    else:
        _verify_signature(obj, alg, client, policy, fail)

    expires_at = _check_claims(claims, request, policy, clock, fail)
    jti = claims["jti"]
    key = sha256_b64url(f"{client.client_id}:{jti}")
    if not replay_store.check_and_record(key, expires_at):
        raise fail("the client assertion was already used", reason="replay")
    return AuthenticatedClient(client, registered)


def _parse_assertion(assertion: str, fail: _Failure) -> tuple[CompactSignature, dict[str, Any]]:
    """Structure only (no trust yet): compact form, strict base64url, JSON object claims."""
    if not _COMPACT_JWS.match(assertion) or not all(
        is_b64url(part) for part in assertion.split(".")
    ):
        raise fail("the client assertion is not a compact JWS", reason="malformed")
    try:
        obj = jws.extract_compact(assertion.encode("ascii"), registry=_PARSE_REGISTRY)
    except (JoseError, ValueError, TypeError, RecursionError):  # deep nesting: not a crash
        raise fail("the client assertion is not a valid JWT", reason="malformed") from None
    header = obj.headers()
    if "crit" in header or "b64" in header:
        # RFC 7515 §4.1.11: no extension is understood here (nor RFC 7797 unencoded payloads).
        raise fail("the client assertion uses an unsupported header", reason="crit")
    if not _typ_ok(header.get("typ")):
        # RFC 8725 §3.11: a JWT typed for another purpose is not a client assertion.
        raise fail("the client assertion has the wrong typ", reason="wrong_typ")
    try:
        claims = loads_json(obj.payload)
    except (ValueError, TypeError):
        claims = None
    if not isinstance(claims, dict):
        raise fail("the client assertion is not a valid JWT", reason="malformed")
    return obj, claims


def _verify_hmac(obj: CompactSignature, client: Client, store: ClientStore, fail: _Failure) -> None:
    secret = store.client_secret_for_jwt(client)
    if secret is None or len(secret.encode("utf-8")) < _MIN_HMAC_KEY_BYTES:
        raise fail("client authentication failed", reason="no_shared_secret")
    # OIDC Core §10.1: the key is the octets of the UTF-8 representation of the secret.
    key = OctKey.import_key(secret.encode("utf-8"))
    try:
        ok = jws.validate_compact(obj, key, registry=_REGISTRIES[SECRET_JWT_ALGORITHM])
    except (JoseError, ValueError):
        ok = False
    if not ok:
        raise fail("the client assertion signature is invalid", reason="bad_signature")


def _verify_signature(
    obj: CompactSignature, alg: str, client: Client, policy: ClientAuthPolicy, fail: _Failure
) -> None:
    kid = obj.headers().get("kid")
    if kid is not None and not isinstance(kid, str):
        raise fail("the client assertion kid is malformed", reason="malformed")
    registry = _REGISTRIES[alg]
    for refresh in (False, True):
        jwks = policy.jwks_provider(client, refresh=refresh)
        if jwks is None:
            raise fail("the client has no registered keys", reason="no_client_keys")
        try:
            keys = policy.key_cache.get(jwks)
        except (JoseError, ValueError, TypeError, KeyError):
            raise fail("the client's keys are invalid", reason="bad_client_jwks") from None
        candidates = _candidate_keys(keys, alg, kid)
        for key in candidates[:_MAX_KEYS_TRIED]:
            try:
                if jws.validate_compact(obj, key, registry=registry):
                    return
            except (JoseError, ValueError, TypeError):
                continue
        # Refetch once only for an unknown kid: the client may have rotated its keys.
        if candidates or kid is None or client.jwks_uri is None:
            break
    raise fail("the client assertion signature is invalid", reason="bad_signature")


def _candidate_keys(keys: KeySet, alg: str, kid: str | None) -> list[Any]:
    key_type = _REGISTRIES[alg].algorithms[alg].key_type
    found = []
    for key in keys:
        if key.key_type != key_type or key.get("use") not in (None, "sig"):
            continue
        if key.get("alg") not in (None, alg) or (kid is not None and key.kid != kid):
            continue
        found.append(key)
    return found


def _check_claims(
    claims: Mapping[str, Any],
    request: ClientAuthRequest,
    policy: ClientAuthPolicy,
    clock: Clock,
    fail: _Failure,
) -> int:
    """RFC 7523 §3 claims of a verified assertion; returns when its replay record may go."""
    audiences = {request.issuer}
    if policy.accept_endpoint_audience:
        audiences.add(request.endpoint_url)
        if request.token_endpoint_url:
            audiences.add(request.token_endpoint_url)
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not isinstance(aud, str) or aud not in audiences:
        raise fail("the client assertion audience is not this server", reason="wrong_aud")

    now = clock.now()
    leeway = policy.leeway
    exp = _number(claims.get("exp"))
    if exp is None:
        raise fail("the client assertion needs a numeric exp", reason="missing_exp")
    if now >= exp + leeway:
        raise fail("the client assertion has expired", reason="expired")
    if "nbf" in claims:
        nbf = _number(claims["nbf"])
        if nbf is None:
            raise fail("the client assertion nbf is malformed", reason="malformed_nbf")
        if nbf > now + leeway:
            raise fail("the client assertion is not yet valid", reason="not_yet_valid")
    start = now
    if "iat" in claims:
        iat = _number(claims["iat"])
        if iat is None:
            raise fail("the client assertion iat is malformed", reason="malformed_iat")
        if iat > now + leeway:
            raise fail("the client assertion was issued in the future", reason="iat_in_future")
        start = iat
    if exp - start > policy.max_assertion_lifetime:
        raise fail("the client assertion lifetime is too long", reason="lifetime_too_long")

    jti = claims.get("jti")
    # isprintable() also refuses lone surrogates (JSON "\ud800"), which have no UTF-8 form.
    if (
        not isinstance(jti, str)
        or not jti.isprintable()
        or not 0 < len(jti.encode("utf-8")) <= _MAX_JTI
    ):
        raise fail("the client assertion needs a usable jti", reason="missing_jti")
    return math.ceil(exp + leeway)
