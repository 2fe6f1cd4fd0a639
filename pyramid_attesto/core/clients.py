"""The client model and the client registry a host implements.

A :class:`Client` is the registered metadata of one OAuth client: the RFC 7591 §2 client
metadata (``redirect_uris``, ``token_endpoint_auth_method``, ``grant_types``,
``response_types``, ``scope``, ``jwks`` / ``jwks_uri``), the OpenID Connect Dynamic Client
Registration 1.0 §2 members we act on (``application_type``,
``id_token_signed_response_alg``, ``token_endpoint_auth_signing_alg``), RFC 8705 §2.1.2 and
§3.4 (the ``tls_client_auth_*`` subject and ``tls_client_certificate_bound_access_tokens``),
RFC 9449 §5.2 (``dpop_bound_access_tokens``), RFC 9126 §6
(``require_pushed_authorization_requests``), RFC 9101 §10.5 and OIDC Registration §2
(``require_signed_request_object``, ``request_object_signing_alg``), JARM §3
(``authorization_signed_response_alg``) and RFC 9701 §6
(``introspection_signed_response_alg``).

Public and confidential clients (RFC 6749 §2.1) are told apart by the registered
``token_endpoint_auth_method``: ``none`` is a public client, every other method a confidential
one (RFC 7591 §2). A client has exactly one method, and :func:`~.client_auth.authenticate_client`
accepts only that one, so a confidential client cannot downgrade to ``none``.

The host supplies its registry as a :class:`ClientStore`; the only credential-bearing call is
:meth:`ClientStore.verify_client_secret`, so the host keeps only a hash of each secret
(DESIGN.md rule 4). The keys of a ``private_key_jwt`` client come from a :class:`JWKSProvider`
(fetching a ``jwks_uri`` is the provider's job, with the limits of DESIGN.md D18), and the
RFC 8705 certificate match is a :class:`CertificateMatcher`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

__all__ = [
    "ASSERTION_METHODS",
    "AUTH_METHODS",
    "MTLS_METHODS",
    "SECRET_METHODS",
    "ApplicationType",
    "AuthMethod",
    "CertificateMatcher",
    "Client",
    "ClientStore",
    "JWKSProvider",
    "MTLSMethod",
    "inline_jwks",
]

AuthMethod = Literal[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
    "none",
]
"""A token endpoint authentication method (RFC 7591 §2, OIDC Core §9, RFC 8705 §2.1-2.2)."""

MTLSMethod = Literal["tls_client_auth", "self_signed_tls_client_auth"]
ApplicationType = Literal["web", "native"]

AUTH_METHODS: frozenset[AuthMethod] = frozenset(get_args(AuthMethod))
SECRET_METHODS: frozenset[AuthMethod] = frozenset({"client_secret_basic", "client_secret_post"})
ASSERTION_METHODS: frozenset[AuthMethod] = frozenset({"client_secret_jwt", "private_key_jwt"})
MTLS_METHODS: frozenset[AuthMethod] = frozenset(get_args(MTLSMethod))

# RFC 8705 §2.1.2: a tls_client_auth client registers exactly one of these.
_TLS_SUBJECT_FIELDS = (
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
)


def _strings(name: str, value: Sequence[str]) -> tuple[str, ...]:
    # A bare string is a Sequence[str] too: ["h", "t", "t", "p", ...] is never what was meant.
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"Client.{name} must be a sequence of strings, not {value!r}")
    return tuple(value)


@dataclass(frozen=True, kw_only=True)
class Client:
    """One registered client (RFC 7591 §2 metadata, with their RFC 7591 defaults).

    >>> app = Client(client_id="cli", token_endpoint_auth_method="none",
    ...              application_type="native", redirect_uris=["http://127.0.0.1/cb"])
    >>> app.public, app.redirect_uris
    (True, ('http://127.0.0.1/cb',))

    Construction checks the metadata's own invariants and raises :class:`ValueError` or
    :class:`TypeError` (a bug in the host's store, never a client error): a known method,
    not both ``jwks`` and ``jwks_uri`` (RFC 7591 §2), keys for the methods that need them,
    and exactly one certificate subject for ``tls_client_auth`` (RFC 8705 §2.1.2).
    Redirect URIs are validated at registration
    (:func:`~.redirect_uris.validate_redirect_uri_for_registration`), not here.
    """

    client_id: str
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"  # noqa: S105
    redirect_uris: Sequence[str] = ()
    grant_types: Sequence[str] = ("authorization_code",)
    response_types: Sequence[str] = ("code",)
    scope: str | None = None
    """The registered scope values, space-separated (RFC 7591 §2)."""
    application_type: ApplicationType = "web"
    jwks: Mapping[str, Any] | None = field(default=None, hash=False)
    """A JWK Set (RFC 7517 §5) of the client's public keys, registered by value."""
    jwks_uri: str | None = None
    """Where the client publishes its JWK Set; fetched by the :class:`JWKSProvider`."""
    token_endpoint_auth_signing_alg: str | None = None
    """When set, the only ``alg`` accepted on this client's assertions (OIDC Registration §2)."""
    id_token_signed_response_alg: str = "RS256"  # noqa: S105
    dpop_bound_access_tokens: bool = False
    tls_client_certificate_bound_access_tokens: bool = False
    tls_client_auth_subject_dn: str | None = None
    tls_client_auth_san_dns: str | None = None
    tls_client_auth_san_uri: str | None = None
    tls_client_auth_san_ip: str | None = None
    tls_client_auth_san_email: str | None = None
    require_pushed_authorization_requests: bool = False
    client_name: str | None = None
    require_signed_request_object: bool = False
    """RFC 9101 §10.5: every authorization request of this client is a signed request object."""
    request_object_signing_alg: str | None = None
    """When set, the only ``alg`` accepted on this client's request objects (OIDC Registration
    §2)."""
    authorization_signed_response_alg: str | None = None
    """The ``alg`` of this client's JARM responses (JARM §3; ``None``: the server default)."""
    introspection_signed_response_alg: str | None = None
    """The ``alg`` of RFC 9701 JWT introspection responses to this client (RFC 9701 §6;
    ``None``: the server default)."""

    def __post_init__(self) -> None:
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ValueError("Client.client_id must be a non-empty string")
        if self.token_endpoint_auth_method not in AUTH_METHODS:
            raise ValueError(
                f"unknown token_endpoint_auth_method {self.token_endpoint_auth_method!r}"
            )
        if self.application_type not in ("web", "native"):
            raise ValueError(f"unknown application_type {self.application_type!r}")
        for name in ("redirect_uris", "grant_types", "response_types"):
            object.__setattr__(self, name, _strings(name, getattr(self, name)))
        if self.jwks is not None and self.jwks_uri is not None:
            raise ValueError("RFC 7591 §2: jwks and jwks_uri MUST NOT both be registered")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError("Client.jwks must be a JWK Set: an object with a 'keys' array")
        method = self.token_endpoint_auth_method
        if method in ("private_key_jwt", "self_signed_tls_client_auth") and (
            self.jwks is None and self.jwks_uri is None
        ):
            raise ValueError(f"a {method} client needs jwks or jwks_uri")
        subjects = [name for name in _TLS_SUBJECT_FIELDS if getattr(self, name) is not None]
        if method == "tls_client_auth" and len(subjects) != 1:
            raise ValueError(
                "RFC 8705 §2.1.2: a tls_client_auth client registers exactly one of "
                + ", ".join(_TLS_SUBJECT_FIELDS)
            )

    @property
    def public(self) -> bool:
        """A public client (RFC 6749 §2.1): it authenticates with ``none``."""
        return self.token_endpoint_auth_method == "none"  # noqa: S105

    @property
    def confidential(self) -> bool:
        """A confidential client (RFC 6749 §2.1): any method but ``none``."""
        return not self.public

    @property
    def native(self) -> bool:
        """A native application (RFC 8252): any-port loopback redirects apply to it."""
        return self.application_type == "native"


class ClientStore(Protocol):
    """The host's client registry.

    ``verify_client_secret`` gets the secret the client presented and answers whether it is
    the client's secret. Store only a hash: for secrets you generate (at least 256 random
    bits, e.g. :func:`pyramid_attesto.core.secret.generate_secret`) a SHA-256 of the secret
    (:func:`~pyramid_attesto.core.secret.hash_secret`) compared with
    :func:`~pyramid_attesto.core.secret.constant_time_equals` is enough; for human-chosen
    secrets use a slow password hash (scrypt, Argon2) and its own verify function. Never
    log the secret.

    ``client_secret_for_jwt`` is called only for ``client_secret_jwt`` (OIDC Core §9), which
    needs the secret itself as the HMAC key: a host that keeps only hashes returns ``None``
    and that method fails closed (it is off unless enabled in the policy, DESIGN.md D7).
    """

    def load_client(self, client_id: str) -> Client | None:
        """The client registered as ``client_id``, or ``None`` if unknown or disabled."""
        ...

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        """Whether ``secret`` is ``client``'s secret, compared in constant time."""
        ...

    def client_secret_for_jwt(self, client: Client) -> str | None:
        """The shared secret of a ``client_secret_jwt`` client, or ``None``."""
        ...


class JWKSProvider(Protocol):
    """Returns the JWK Set of a client: its registered ``jwks``, or the document at its
    ``jwks_uri`` (fetched with caching, backoff and size limits, DESIGN.md D18).

    ``refresh=True`` is passed at most once per assertion, when no key matched the ``kid``
    of a signature: a provider that caches a ``jwks_uri`` may refetch (the client rotated its
    keys), subject to its own rate limit. ``None`` means the client has no keys.
    """

    def __call__(self, client: Client, *, refresh: bool = False) -> Mapping[str, Any] | None: ...


def inline_jwks(client: Client, *, refresh: bool = False) -> Mapping[str, Any] | None:
    """The default :class:`JWKSProvider`: only keys registered by value (``jwks``)."""
    return client.jwks


class CertificateMatcher(Protocol):
    """Matches the presented client certificate against a client (RFC 8705 §2).

    ``certificate`` is whatever the certificate source produced (opaque to client
    authentication). For ``tls_client_auth`` the matcher compares the registered subject DN
    or SAN exactly and must accept only a certificate whose chain was validated
    (DESIGN.md D14); for ``self_signed_tls_client_auth`` it finds the certificate in
    ``jwks`` (the client's JWK Set, from the same :class:`JWKSProvider` as assertions).
    Return ``False`` on any mismatch or parse failure; do not raise.
    """

    def __call__(
        self,
        client: Client,
        certificate: object,
        method: MTLSMethod,
        jwks: Mapping[str, Any] | None,
    ) -> bool: ...
