"""The ``attesto.*`` settings: one table of every key, parsed and validated together.

DESIGN.md rule 10: nothing reads settings at import time. ``includeme`` registers one
deferred action that calls :func:`parse_settings`; an unknown ``attesto.*`` key or a missing
required key raises :class:`~pyramid_attesto.core.errors.ConfigurationError` naming the key.

Conventions (STYLE.md): lower_snake names, durations in integer seconds ending in ``_ttl``,
booleans and lists with Pyramid's ``asbool`` / ``aslist`` semantics.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyramid.settings import aslist

from .core.errors import ConfigurationError
from .core.jwt_bearer import TrustedIssuer
from .hostpolicy import is_callback_key

__all__ = ["PREFIX", "SETTINGS", "AttestoSettings", "Setting", "is_known_key", "parse_settings"]

PREFIX = "attesto."
_TRUE = frozenset({"true", "yes", "on", "1", "t", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "f", "n", ""})


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"{key}: expected a boolean (true/false), got {value!r}")


def _seconds(key: str, value: object) -> int:
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"{key}: expected whole seconds, got {value!r}") from None
    if seconds <= 0:
        raise ConfigurationError(f"{key}: must be a positive number of seconds")
    return seconds


def _str(key: str, value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ConfigurationError(f"{key}: must not be empty")
    return text


def _list(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(aslist(str(value), flatten=True))


def _networks(key: str, value: object) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in _list(key, value))
    except ValueError as exc:
        raise ConfigurationError(f"{key}: {exc}") from None


def _non_negative(key: str, value: object) -> int:
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"{key}: expected whole seconds, got {value!r}") from None
    if seconds < 0:
        raise ConfigurationError(f"{key}: must not be negative")
    return seconds


def _absolute_urls(key: str, value: object) -> tuple[str, ...]:
    urls = _list(key, value)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"{key}: {url!r} is not an absolute http(s) URL")
        if parts.fragment or "#" in url:
            raise ConfigurationError(f"{key}: {url!r} has a fragment")
    return urls


def _absolute_url(key: str, value: object) -> str:
    urls = _absolute_urls(key, value)
    if len(urls) != 1:
        raise ConfigurationError(f"{key}: exactly one URL")
    return urls[0]


def _bearer_methods(key: str, value: object) -> tuple[str, ...]:
    methods = _list(key, value)
    if "header" not in methods or not set(methods) <= {"header", "body"}:
        raise ConfigurationError(f"{key}: `header`, optionally with `body` (RFC 6750 2.1, 2.2)")
    if "query" in methods:  # pragma: no cover - refused above; RFC 9700 4.3.2
        raise ConfigurationError(f"{key}: query-string tokens are never accepted")
    return methods


def _route_prefix(key: str, value: object) -> str:
    text = str(value).strip()
    if text in ("", "/"):
        return ""
    if not text.startswith("/") or text.endswith("/") or "//" in text:
        raise ConfigurationError(f"{key}: a path such as /oauth (leading /, no trailing /)")
    return text


def _storage(key: str, value: object) -> str:
    text = str(value).strip()
    if text not in ("memory", "sqlalchemy", "dbsession"):
        raise ConfigurationError(f"{key}: one of memory, sqlalchemy, dbsession")
    return text


def _dpop_nonce(key: str, value: object) -> str:
    text = str(value).strip()
    if text not in ("off", "hmac"):
        raise ConfigurationError(f"{key}: off or hmac")
    return text


def _trusted_issuers(key: str, value: object) -> tuple[TrustedIssuer, ...]:
    """``{iss: {"jwks": {...} | "jwks_uri": url, "algorithms": [...], "profiles": [...]}}``,
    inline JSON or the path of a JSON file."""
    if isinstance(value, Mapping):
        document: object = value
    else:
        text = str(value).strip()
        if not text:
            return ()
        try:
            if not text.startswith("{"):
                text = Path(text).read_text(encoding="utf-8")
            document = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{key}: not JSON or a readable JSON file: {exc}") from None
    if not isinstance(document, Mapping):
        raise ConfigurationError(f"{key}: a JSON object of issuers")
    issuers = []
    for iss, spec in document.items():
        if not isinstance(spec, Mapping):
            raise ConfigurationError(f"{key}: {iss}: an object with jwks or jwks_uri")
        unknown = set(spec) - {"jwks", "jwks_uri", "algorithms", "profiles"}
        profiles = spec.get("profiles", ["id_jag"])
        if unknown or not isinstance(profiles, list) or not set(profiles) <= _PROFILES:
            raise ConfigurationError(
                f"{key}: {iss}: members are jwks, jwks_uri, algorithms and profiles "
                "(id_jag, jwt_bearer)"
            )
        jwks_uri = spec.get("jwks_uri")
        if jwks_uri is not None and not str(jwks_uri).startswith("https://"):
            raise ConfigurationError(f"{key}: {iss}: jwks_uri must be https")
        options: dict[str, Any] = {
            "issuer": iss,
            "jwks": spec.get("jwks"),
            "jwks_uri": jwks_uri,
            "id_jag": "id_jag" in profiles,
            "jwt_bearer": "jwt_bearer" in profiles,
        }
        if "algorithms" in spec:
            options["algorithms"] = frozenset(spec["algorithms"])
        try:
            issuers.append(TrustedIssuer(**options))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"{key}: {exc}") from None
    return tuple(issuers)


_PROFILES = frozenset({"id_jag", "jwt_bearer"})
_RESPONSE_MODES: tuple[str, ...] = (
    "query",
    "fragment",
    "form_post",
    "jwt",
    "query.jwt",
    "fragment.jwt",
    "form_post.jwt",
)


def _response_modes(key: str, value: object) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(_list(key, value)))
    unknown = [m for m in modes if m not in _RESPONSE_MODES]
    if unknown:
        raise ConfigurationError(
            f"{key}: unknown response mode {unknown[0]} (one of {', '.join(_RESPONSE_MODES)})"
        )
    if "query" not in modes:
        raise ConfigurationError(f"{key}: query is the code flow's default mode and is needed")
    return modes


@dataclass(frozen=True, slots=True)
class Setting:
    """One ``attesto.*`` key: its parser, its default (absent = required) and its help."""

    parse: Callable[[str, object], Any]
    default: object = None
    required: bool = False
    help: str = ""


SETTINGS: Mapping[str, Setting] = {
    "issuer": Setting(
        _str,
        required=True,
        help="The issuer identifier: an https URL without query, fragment or trailing slash.",
    ),
    "keystore": Setting(
        _str,
        required=True,
        help="A private JWKS file, a dotted name of a Keystore, or `generate` (development "
        "only: a per-process key).",
    ),
    "require_https": Setting(
        _bool, True, help="Refuse plain-HTTP issuers and requests (off only on loopback)."
    ),
    "route_prefix": Setting(_route_prefix, "/oauth", help="Where the endpoints are mounted."),
    "trusted_proxies": Setting(
        _networks, (), help="Peers whose X-Forwarded-* / Forwarded headers are honoured."
    ),
    "scopes_supported": Setting(_list, (), help="The scope catalog."),
    "access_token_ttl": Setting(_seconds, 900, help="Access-token lifetime."),
    "refresh_token_ttl": Setting(_seconds, 14 * 24 * 3600, help="Refresh-token lifetime."),
    "code_ttl": Setting(_seconds, 60, help="Authorization-code lifetime."),
    "par_ttl": Setting(_seconds, 90, help="Pushed authorization request lifetime."),
    # Host policy objects (pyramid_attesto.hostpolicy): dotted names; a directive wins.
    "client_store": Setting(_str, None, help="The ClientStore (dotted name)."),
    "principal_store": Setting(_str, None, help="The PrincipalStore (dotted name)."),
    "scope_policy": Setting(
        _str, None, help="The ScopePolicy (dotted name); default: the scope catalog."
    ),
    "consent_policy": Setting(_str, None, help="The ConsentPolicy (dotted name)."),
    "claims_provider": Setting(_str, None, help="The ClaimsProvider (dotted name)."),
    "event_sink": Setting(_str, None, help="The EventSink (dotted name)."),
    # Stores (pyramid_attesto.storefactory).
    "storage": Setting(
        _storage,
        None,
        help="memory, sqlalchemy (attesto.sqlalchemy.url) or dbsession (the host's "
        "request.dbsession); default: sqlalchemy when a URL is set, else memory.",
    ),
    "sqlalchemy.url": Setting(_str, None, help="The database of the attesto tables."),
    "refresh_successor_secret": Setting(
        _str, None, help="Enables the refresh grace window (at least 32 bytes)."
    ),
    # The token endpoint (pyramid_attesto.server).
    "grant_types_supported": Setting(
        _list, None, help="The grant types served; default: every grant this version serves."
    ),
    "token_endpoint_auth_methods": Setting(
        _list,
        ("client_secret_basic", "client_secret_post", "private_key_jwt", "none"),
        help="The client authentication methods enabled (and advertised).",
    ),
    "resources": Setting(_list, (), help="RFC 8707 resource allow-list (audiences)."),
    "default_resource": Setting(
        _str, None, help="The audience of a token requested without resource (default: issuer)."
    ),
    "refresh_grace_ttl": Setting(
        _non_negative,
        0,
        help="Seconds a rotated refresh token may be retried for the same successor; needs "
        "attesto.refresh_successor_secret.",
    ),
    "refresh_family_ttl": Setting(
        _seconds, 90 * 24 * 3600, help="Absolute lifetime of a refresh-token family."
    ),
    "mtls.enabled": Setting(
        _bool,
        False,
        help="RFC 8705: client certificates (SSL_CLIENT_CERT, or Client-Cert from a trusted "
        "proxy) authenticate tls_client_auth clients and bind their tokens.",
    ),
    "require_pushed_authorization_requests": Setting(
        _bool, False, help="Accept only pushed authorization requests (RFC 9126 5)."
    ),
    "introspection_clients": Setting(
        _list, (), help="Clients (resource servers) that may introspect any client's tokens."
    ),
    "max_body_bytes": Setting(_seconds, 65536, help="Largest request body accepted."),
    "dpop.enabled": Setting(_bool, True, help="Issue DPoP-bound tokens (RFC 9449)."),
    "dpop.nonce": Setting(
        _dpop_nonce, "off", help="off, or hmac (stateless nonces from attesto.dpop.nonce_secret)."
    ),
    # -- registration, metadata documents, token exchange, jwt-bearer (issue 6) -------------
    "registration.enabled": Setting(
        _bool, False, help="Serve dynamic client registration (RFC 7591, RFC 7592)."
    ),
    "registration_store": Setting(
        _str,
        None,
        help="The RegistrationStore (dotted name), `memory` (one process) or `sqlalchemy` "
        "(the attesto database: attesto.sqlalchemy.url or dbsession); required when "
        "registration is enabled.",
    ),
    "registration_gate": Setting(
        _str, None, help="The RegistrationGate (dotted name): rate limit and policy."
    ),
    "registration.initial_access_tokens": Setting(
        _list,
        (),
        help="SHA-256 (base64url) hashes of initial access tokens; set: registration needs one.",
    ),
    "registration.auth_methods": Setting(
        _list,
        None,
        help="Methods granted to registered clients (default: the enabled ones among none, "
        "client_secret_basic, client_secret_post, private_key_jwt).",
    ),
    "registration.default_scope": Setting(
        _str, None, help="The scope registered when a request names none."
    ),
    "registration.client_secret_ttl": Setting(
        _non_negative, 0, help="Seconds until an issued client secret expires (0: never)."
    ),
    "client_id_metadata.enabled": Setting(
        _bool, False, help="Resolve https client_ids as Client ID Metadata Documents."
    ),
    "client_id_metadata.allowed_hosts": Setting(
        _list, (), help="Only these document hosts (default: any public host)."
    ),
    "client_id_metadata.blocked_hosts": Setting(_list, (), help="Never these document hosts."),
    "token_exchange.enabled": Setting(
        _bool, False, help="Serve the token-exchange grant (RFC 8693) to clients registered for it."
    ),
    "exchange_policy": Setting(
        _str, None, help="The ExchangePolicy (dotted name) deciding each token exchange."
    ),
    "jwt_bearer.issuers": Setting(
        _trusted_issuers,
        (),
        help="Trusted assertion issuers (JSON, inline or a .json file): {iss: {jwks | "
        "jwks_uri, algorithms, profiles: [id_jag, jwt_bearer]}}; set: serves the jwt-bearer "
        "grant (RFC 7523, ID-JAG).",
    ),
    "assertion_subject_resolver": Setting(
        _str,
        None,
        help="The SubjectResolver (dotted name) mapping an assertion's subject to a local user.",
    ),
    "assertion_policy": Setting(
        _str, None, help="The AssertionPolicy (dotted name) deciding each jwt-bearer grant."
    ),
    # -- issuance decisions and response hooks (issue 5) ---------------------------------------
    "refresh_token_policy": Setting(
        _str,
        None,
        help="The RefreshTokenPolicy (dotted name) deciding when a refresh token is issued; "
        "default: registered for refresh_token, or offline_access granted.",
    ),
    "client_resource_policy": Setting(
        _str,
        None,
        help="The ClientResourcePolicy (dotted name) narrowing attesto.resources per client.",
    ),
    "send_error": Setting(
        _str,
        None,
        help="Dotted name of send_error(request, error, body) -> body | ErrorEnvelope: the "
        "envelope of every attesto JSON error response.",
    ),
    "www_authenticate": Setting(
        _str,
        None,
        help="Dotted name of www_authenticate(request, challenges, error) -> challenges: adds "
        "or alters challenge parameters (realm, ...).",
    ),
    "no_store": Setting(
        _str,
        None,
        help="Dotted name of no_store(request, response) -> None: adds a deployment's own "
        "headers (Surrogate-Control, CDN-Cache-Control, ...) to every response attesto marks "
        "non-cacheable; Cache-Control: no-store always stays.",
    ),
    # -- JAR, JARM and the mTLS aliases (issue 6) ---------------------------------------------
    "request_object_policy": Setting(
        _str,
        None,
        help="Accept signed request objects (RFC 9101) at authorize and PAR: `generic`, "
        "`fapi2_message_signing`, or the dotted name of a RequestObjectPolicy (or of a "
        "callable returning one); unset: the request parameter is request_not_supported.",
    ),
    "require_signed_request_object": Setting(
        _bool,
        False,
        help="Every authorization request must be a signed request object (RFC 9101 10.5); "
        "needs attesto.request_object_policy.",
    ),
    "response_modes": Setting(
        _response_modes,
        ("query", "form_post", "jwt", "query.jwt", "form_post.jwt"),
        help="The response modes served (and advertised): query (always), fragment, "
        "form_post, and the JARM modes jwt, query.jwt, fragment.jwt, form_post.jwt.",
    ),
    "jarm.algorithms": Setting(
        _list,
        (),
        help="The algorithms JARM responses may be signed with (default: every algorithm the "
        "keystore signs with); each needs an active key.",
    ),
    "mtls.base_url": Setting(
        _absolute_url,
        None,
        help="The URL of the application root on the mutual-TLS host (scheme://host[:port]); "
        "set: metadata advertises mtls_endpoint_aliases there (RFC 8705 5). Needs "
        "attesto.mtls.enabled.",
    ),
    # -- resource server (pyramid_attesto.resource, policy.py) --------------------------------
    "resource": Setting(
        _absolute_urls,
        (),
        help="This application's canonical resource URI(s) (RFC 8707): an access token's aud "
        "must name one. The first is the default; each gets protected-resource metadata.",
    ),
    "jwks_uri": Setting(
        _absolute_url,
        None,
        help="A resource server apart from the authorization server: the AS's JWKS URL, "
        "instead of attesto.keystore.",
    ),
    "public_url": Setting(
        _str,
        None,
        help="The public URL of the application root (scheme://host[:port][/prefix]); default "
        "the issuer's origin, or the first resource's for a resource server alone.",
    ),
    "authorization_servers": Setting(
        _absolute_urls, (), help="Issuers named in protected-resource metadata (default: issuer)."
    ),
    "bearer_methods": Setting(
        _bearer_methods,
        ("header",),
        help="How access tokens may be sent: `header`, optionally `body` (form body, RFC 6750 "
        "2.2). Query-string tokens are never accepted.",
    ),
    "resource_name": Setting(_str, None, help="RFC 9728 resource_name."),
    "resource_documentation": Setting(_absolute_url, None, help="RFC 9728 resource_documentation."),
    "realm": Setting(_str, None, help="The realm of the resource server's challenges."),
    "access_token_leeway": Setting(
        _non_negative, 30, help="Seconds of clock skew tolerated on exp, nbf and iat."
    ),
    "revocation_check": Setting(
        _bool, False, help="Consult the access-token denylist on every request (a read each)."
    ),
    "principal_loader": Setting(
        _str, None, help="Dotted name of loader(identity) -> principal, called lazily."
    ),
    "token_extractor": Setting(
        _str,
        None,
        help="Dotted name of extractor(request) -> (scheme, token) | None: another place an "
        "access token may come from (e.g. a cookie).",
    ),
    "install_policy": Setting(
        _bool,
        True,
        help="Install the resource-server security policy, wrapping the host's as fallback.",
    ),
    "dpop.required": Setting(
        _bool, False, help="Accept only DPoP-bound tokens (dpop_bound_access_tokens_required)."
    ),
    "dpop.resource_nonce": Setting(
        _bool, False, help="Require a resource-server DPoP nonce (RFC 9449 9)."
    ),
    "dpop.nonce_secret": Setting(
        _list,
        (),
        help="Secret(s) of the stateless DPoP nonces, newest first, shared by every node; "
        "without one a per-process secret is generated.",
    ),
    "dpop.algorithms": Setting(_list, (), help="DPoP proof algorithms (default: all allowed)."),
    "dpop.max_age": Setting(_seconds, 60, help="How old a DPoP proof's iat may be."),
    "replay_store": Setting(
        _str,
        "memory",
        help="Where DPoP replay keys are claimed: `memory` (one process) or the dotted name "
        "of a ReplayStore (factory).",
    ),
}
"""Every ``attesto.*`` key this version understands (without the prefix)."""


@dataclass(frozen=True, slots=True)
class AttestoSettings:
    """The parsed ``attesto.*`` settings."""

    issuer: str
    keystore: str
    require_https: bool = True
    route_prefix: str = "/oauth"
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    access_token_ttl: int = 900
    refresh_token_ttl: int = 14 * 24 * 3600
    code_ttl: int = 60
    par_ttl: int = 90
    client_store: str | None = None
    principal_store: str | None = None
    scope_policy: str | None = None
    consent_policy: str | None = None
    claims_provider: str | None = None
    event_sink: str | None = None
    storage: str | None = None
    sqlalchemy_url: str | None = None
    refresh_successor_secret: str | None = None
    grant_types_supported: tuple[str, ...] | None = None
    token_endpoint_auth_methods: tuple[str, ...] = (
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    )
    resources: tuple[str, ...] = ()
    default_resource: str | None = None
    refresh_grace_ttl: int = 0
    refresh_family_ttl: int = 90 * 24 * 3600
    mtls_enabled: bool = False
    require_pushed_authorization_requests: bool = False
    introspection_clients: tuple[str, ...] = ()
    max_body_bytes: int = 65536
    dpop_enabled: bool = True
    dpop_nonce: str = "off"
    registration_enabled: bool = False
    registration_store: str | None = None
    registration_gate: str | None = None
    registration_initial_access_tokens: tuple[str, ...] = ()
    registration_auth_methods: tuple[str, ...] | None = None
    registration_default_scope: str | None = None
    registration_client_secret_ttl: int = 0
    client_id_metadata_enabled: bool = False
    client_id_metadata_allowed_hosts: tuple[str, ...] = ()
    client_id_metadata_blocked_hosts: tuple[str, ...] = ()
    token_exchange_enabled: bool = False
    exchange_policy: str | None = None
    jwt_bearer_issuers: tuple[TrustedIssuer, ...] = ()
    assertion_subject_resolver: str | None = None
    assertion_policy: str | None = None
    refresh_token_policy: str | None = None
    client_resource_policy: str | None = None
    send_error: str | None = None
    www_authenticate: str | None = None
    no_store: str | None = None
    request_object_policy: str | None = None
    require_signed_request_object: bool = False
    response_modes: tuple[str, ...] = ("query", "form_post", "jwt", "query.jwt", "form_post.jwt")
    jarm_algorithms: tuple[str, ...] = ()
    mtls_base_url: str | None = None
    # -- resource server --------------------------------------------------------------------
    resource: tuple[str, ...] = ()
    jwks_uri: str | None = None
    public_url: str | None = None
    authorization_servers: tuple[str, ...] = ()
    bearer_methods: tuple[str, ...] = ("header",)
    resource_name: str | None = None
    resource_documentation: str | None = None
    realm: str | None = None
    access_token_leeway: int = 30
    revocation_check: bool = False
    principal_loader: str | None = None
    token_extractor: str | None = None
    install_policy: bool = True
    dpop_required: bool = False
    dpop_resource_nonce: bool = False
    dpop_nonce_secret: tuple[str, ...] = ()
    dpop_algorithms: tuple[str, ...] = ()
    dpop_max_age: int = 60
    replay_store: str = "memory"


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validate_issuer(issuer: str, require_https: bool) -> None:
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or "#" in issuer or "?" in issuer:
        raise ConfigurationError("attesto.issuer: no query or fragment (RFC 8414 §2)")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError("attesto.issuer: no userinfo")
    if issuer.endswith("/"):
        raise ConfigurationError("attesto.issuer: no trailing slash (clients compare exactly)")
    if not parts.hostname:
        raise ConfigurationError("attesto.issuer: an absolute URL with a host")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and not require_https and _is_loopback_host(parts.hostname):
        return
    raise ConfigurationError(
        "attesto.issuer: must be https (plain http only for a loopback issuer with "
        "attesto.require_https = false)"
    )


def is_known_key(key: str) -> bool:
    """Whether ``key`` is not an ``attesto.*`` key, is in :data:`SETTINGS`, or names a flat
    callback of a host object (``attesto.client_store.load_client``, resolved by
    :mod:`pyramid_attesto.hostpolicy`)."""
    if not key.startswith(PREFIX):
        return True
    return key[len(PREFIX) :] in SETTINGS or is_callback_key(key)


def parse_settings(settings: Mapping[str, object]) -> AttestoSettings:
    """Parse and validate every ``attesto.*`` key of ``settings`` (other keys are ignored)."""
    unknown = sorted(k for k in settings if not is_known_key(k))
    if unknown:
        raise ConfigurationError(f"unknown setting {unknown[0]} (see the configuration reference)")
    values: dict[str, Any] = {}
    for name, spec in SETTINGS.items():
        key = PREFIX + name
        if key in settings:
            # A dotted key (attesto.sqlalchemy.url) is the attribute sqlalchemy_url.
            values[name.replace(".", "_")] = spec.parse(key, settings[key])
        elif spec.required:
            raise ConfigurationError(f"missing required setting {key}")
    parsed = AttestoSettings(**values)
    _validate_issuer(parsed.issuer, parsed.require_https)
    return parsed
