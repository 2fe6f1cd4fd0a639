"""Outbound fetches: the decisions of the SSRF guard, without the network (DESIGN.md D18).

The server fetches documents named by clients and by configuration: Client ID Metadata
Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25) and the ``jwks_uri``
of trusted assertion issuers (RFC 7523). A URL a client chooses is an SSRF lever
(RFC 9700 §4.16, OWASP SSRF), so every fetch goes through one guard. This module holds its
pure parts; :mod:`pyramid_attesto.fetch` does the I/O with them:

- :func:`check_url`: ``https`` only, an ASCII absolute URL without userinfo or fragment, a
  DNS host name or a canonical IP literal. Host names that a resolver would read as a
  number (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) are refused outright:
  ``getaddrinfo`` turns them into loopback addresses, and no public DNS name ends in a
  numeric label.
- :func:`is_public_address`: the address actually connected to must be globally routable
  unicast. Refused: private (RFC 1918, RFC 4193), loopback, link-local (including the cloud
  metadata address 169.254.169.254), shared (RFC 6598), multicast, reserved, unspecified,
  documentation ranges, and every IPv6 form that embeds an IPv4 address (IPv4-mapped,
  6to4, Teredo, NAT64), which would otherwise smuggle ``127.0.0.1`` past an IPv6 check.
- :func:`cache_lifetime`: how long a fetched document may be reused, from its
  ``Cache-Control`` (RFC 9111 §5.2.2): ``no-store`` is never stored, anything else is
  clamped between a floor (which bounds how often a host is refetched) and a ceiling.
- :class:`TTLCache` and :class:`HostBackoff`: bounded, clock-driven state for the document
  cache, the negative cache and the per-host backoff.
- :class:`RemoteKeySets`: JWK Sets fetched from ``jwks_uri`` through a fetcher and cached
  (clients' keys through :class:`RemoteClientKeys`, trusted issuers' keys through
  :class:`~.jwt_bearer.RemoteIssuerKeys`).

A refusal is a :class:`FetchRefused` with a short ``reason``; it is never rendered as is (the
caller turns it into its protocol's error) and never carries a response body.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from .clients import Client
from .clock import Clock

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_URL_LENGTH",
    "DocumentFetcher",
    "FetchRefused",
    "FetchTarget",
    "FetchedDocument",
    "HostBackoff",
    "IPAddress",
    "RemoteClientKeys",
    "RemoteKeySets",
    "TTLCache",
    "cache_lifetime",
    "check_url",
    "is_public_address",
]

MAX_DOCUMENT_BYTES: Final = 5120
"""The largest document fetched (the CIMD draft recommends 5 KB)."""
MAX_URL_LENGTH: Final = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_URL_CHARS: Final = re.compile(r"\A[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+\Z")
_DNS_LABEL: Final = re.compile(r"\A(?!-)[a-z0-9\-]{1,63}(?<!-)\Z")
_PORT: Final = re.compile(r"\A[1-9][0-9]{0,4}\Z")
_NAT64: Final = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)


class FetchRefused(Exception):
    """The guard refused a URL, an address or a response. ``reason`` is a short machine word
    (``not_https``, ``private_address``, ``redirect``, ``too_large``, ``timeout``, ...)."""

    def __init__(self, reason: str, description: str | None = None) -> None:
        super().__init__(description or reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FetchTarget:
    """A URL the guard accepted: the host to resolve (lower case, IPv6 without brackets),
    the port, and the request target (path and query) to send."""

    url: str
    host: str
    port: int
    target: str
    address: IPAddress | None
    """The address when the host is an IP literal (then no name is resolved)."""


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A successful (200) response within the limits: its body and its headers (names in
    lower case)."""

    url: str
    body: bytes
    headers: Mapping[str, str]


class DocumentFetcher(Protocol):
    """Fetches a document through the guard; raises :class:`FetchRefused` on any refusal or
    failure. :class:`pyramid_attesto.fetch.GuardedFetcher` is the implementation; tests
    inject their own."""

    def fetch(self, url: str) -> FetchedDocument: ...


def _refuse(reason: str, description: str) -> FetchRefused:
    return FetchRefused(reason, description)


def check_url(url: str) -> FetchTarget:
    """Accept ``url`` for fetching or raise :class:`FetchRefused` (see the module docs).

    >>> check_url("https://app.example/oauth/client.json").host
    'app.example'
    >>> check_url("http://app.example/c.json")
    Traceback (most recent call last):
      ...
    pyramid_attesto.core.outbound.FetchRefused: only https URLs are fetched
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise _refuse("malformed", "the URL is empty or too long")
    if not url.isascii() or not _URL_CHARS.match(url):
        raise _refuse("malformed", "the URL has characters outside RFC 3986")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "https":
        raise _refuse("not_https", "only https URLs are fetched")
    if scheme != "https":
        raise _refuse("malformed", "the URL scheme must be lower case")
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    target = rest[len(authority) :] or "/"
    if not target.startswith("/"):
        target = "/" + target
    if "@" in authority:
        raise _refuse("userinfo", "the URL must not carry userinfo")
    host, port = _split_authority(authority)
    address = _ip_literal(host)
    if address is None:
        _check_dns_name(host)
    return FetchTarget(url=url, host=host, port=port, target=target, address=address)


def _split_authority(authority: str) -> tuple[str, int]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise _refuse("malformed", "the URL host is not a valid IP literal")
        host, port_part = authority[1:end], authority[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse("malformed", "the URL host is not a valid IP literal") from None
    else:
        host, colon, digits = authority.partition(":")
        port_part = colon + digits
    if not host:
        raise _refuse("malformed", "the URL has no host")
    port = 443
    if port_part:
        digits = port_part[1:]
        if not port_part.startswith(":") or not _PORT.match(digits) or int(digits) > 65535:
            raise _refuse("malformed", "the URL port is invalid")
        port = int(digits)
    return host.lower(), port


def _ip_literal(host: str) -> IPAddress | None:
    if ":" in host:
        return ipaddress.IPv6Address(host)  # checked by _split_authority
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return ipaddress.IPv4Address(host)  # refuses leading zeros (octal forms)
        except ValueError:
            raise _refuse(
                "numeric_host", "the URL host is a number that is not a dotted-quad address"
            ) from None
    return None


def _check_dns_name(host: str) -> None:
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise _refuse("malformed", "the URL host is not a DNS name (IDNs as punycode)")
    last = labels[-1]
    # "0x7f.1", "127.1", "2130706433": numeric forms a resolver turns into an address.
    if last.isdigit() or re.fullmatch(r"0x[0-9a-f]*", last):
        raise _refuse("numeric_host", "the URL host is a number that is not a dotted-quad address")
    if name == "localhost" or name.endswith(".localhost"):
        raise _refuse("private_address", "the URL names the loopback host")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> bool:
    return (
        address.ipv4_mapped is not None
        or address.sixtofour is not None
        or address.teredo is not None
        or any(address in network for network in _NAT64)
        # IPv4-compatible ::a.b.c.d (deprecated, RFC 4291 §2.5.5.1)
        or (int(address) >> 32 == 0 and int(address) > 1)
    )


def is_public_address(address: IPAddress) -> bool:
    """Whether the guard may connect to ``address`` (see the module documentation).

    >>> import ipaddress
    >>> is_public_address(ipaddress.ip_address("93.184.215.14"))
    True
    >>> is_public_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    False
    """
    if isinstance(address, ipaddress.IPv6Address) and (
        address.scope_id is not None or _embedded_ipv4(address)
    ):
        return False
    return (
        address.is_global
        and not address.is_private
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
    )


# -- Cache-Control (RFC 9111 §5.2.2) ---------------------------------------------------------

_MAX_AGE: Final = re.compile(r'\A\s*max-age\s*=\s*"?([0-9]{1,10})"?\s*\Z', re.IGNORECASE)


def cache_lifetime(headers: Mapping[str, str], *, floor: int, ceiling: int, default: int) -> int:
    """Seconds a fetched document may be reused; ``0`` means do not store it.

    ``no-store`` gives 0 (RFC 9111 §5.2.2.5: a cache MUST NOT store the response). Otherwise
    ``max-age`` (or ``default`` without one; ``no-cache`` counts as ``max-age=0``) is clamped
    to ``[floor, ceiling]``: the floor bounds how often a host is refetched (D18), the
    ceiling how long a changed document goes unnoticed. ``headers`` has lower-case names.

    >>> cache_lifetime({"cache-control": "public, max-age=10"}, floor=60, ceiling=86400,
    ...                default=300)
    60
    """
    if not 0 <= floor <= ceiling:
        raise ValueError("the cache floor must be between 0 and the ceiling")
    directives = [d.strip().lower() for d in headers.get("cache-control", "").split(",")]
    if "no-store" in directives:
        return 0
    seconds = default
    for directive in directives:
        if directive == "no-cache":
            seconds = 0
            break
        match = _MAX_AGE.match(directive)
        if match is not None:
            seconds = int(match.group(1))
    return max(floor, min(ceiling, seconds))


# -- bounded state ---------------------------------------------------------------------------

_K = TypeVar("_K")
_V = TypeVar("_V")


class TTLCache(Generic[_K, _V]):
    """A thread-safe cache of at most ``size`` entries, each live until its own expiry on
    ``clock``; the least recently used entry goes first when it is full (a cache may forget,
    unlike a replay store)."""

    def __init__(self, size: int, clock: Clock) -> None:
        if size < 1:
            raise ValueError("a cache needs room for at least one entry")
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[_K, tuple[float, _V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        now = self._clock.now()
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if now >= found[0]:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: _K, value: _V, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds (``ttl <= 0`` keeps nothing)."""
        with self._lock:
            self._entries.pop(key, None)
            if ttl <= 0:
                return
            self._entries[key] = (self._clock.now() + ttl, value)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def discard(self, key: _K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class HostBackoff:
    """Per-host exponential backoff after failed fetches (D18).

    After ``n`` consecutive failures a host is not contacted for
    ``min(base * 2 ** (n - 1), maximum)`` seconds; a success clears it. At most ``size``
    hosts are tracked (the least recently failed is forgotten first).
    """

    def __init__(self, clock: Clock, *, base: float = 10, maximum: float = 900, size: int = 1024):
        if base <= 0 or maximum < base:
            raise ValueError("backoff needs 0 < base <= maximum")
        self._clock = clock
        self._base = base
        self._maximum = maximum
        self._size = size
        self._hosts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, host: str) -> None:
        """Raise :class:`FetchRefused` (``backoff``) while ``host`` is backing off."""
        with self._lock:
            found = self._hosts.get(host)
        if found is not None and self._clock.now() < found[1]:
            raise FetchRefused("backoff", "the host failed recently; try again later")

    def failure(self, host: str) -> None:
        with self._lock:
            failures = self._hosts.pop(host, (0, 0.0))[0] + 1
            delay = min(self._base * 2 ** min(failures - 1, 32), self._maximum)
            self._hosts[host] = (failures, self._clock.now() + delay)
            while len(self._hosts) > self._size:
                self._hosts.popitem(last=False)

    def success(self, host: str) -> None:
        with self._lock:
            self._hosts.pop(host, None)


# -- JWK Sets at a jwks_uri --------------------------------------------------------------------


class RemoteKeySets:
    """JWK Sets fetched from their ``jwks_uri`` through a :class:`DocumentFetcher` and cached
    for their ``Cache-Control`` lifetime clamped to ``[floor, ceiling]`` (RFC 9111). A
    ``refresh`` (an unknown ``kid``: the owner may have rotated its keys) refetches at most
    once per ``refresh_interval`` seconds per URI, so a stream of bogus ``kid`` values cannot
    turn into a stream of fetches; while a fetch fails, the last good set keeps serving."""

    def __init__(
        self,
        fetcher: DocumentFetcher,
        clock: Clock,
        *,
        floor: int = 60,
        ceiling: int = 86_400,
        default: int = 3600,
        refresh_interval: int = 60,
        size: int = 256,
    ) -> None:
        self._fetcher = fetcher
        self._bounds = (floor, ceiling, default)
        self._refresh_interval = refresh_interval
        self._fresh: TTLCache[str, Mapping[str, Any]] = TTLCache(size, clock)
        self._last_good: TTLCache[str, Mapping[str, Any]] = TTLCache(size, clock)
        self._refreshed: TTLCache[str, bool] = TTLCache(size, clock)
        self._lock = threading.Lock()

    def get(self, uri: str, *, refresh: bool = False) -> Mapping[str, Any] | None:
        """The JWK Set at ``uri``, or ``None`` when none was ever fetched successfully."""
        cached = self._fresh.get(uri)
        if cached is not None and not (refresh and self._may_refresh(uri)):
            return cached
        try:
            document = self._fetcher.fetch(uri)
            jwks = json.loads(document.body.decode("utf-8"))
        except (FetchRefused, ValueError):
            return self._last_good.get(uri)
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            return self._last_good.get(uri)
        floor, ceiling, default = self._bounds
        ttl = cache_lifetime(document.headers, floor=floor, ceiling=ceiling, default=default)
        self._fresh.put(uri, jwks, ttl)
        self._last_good.put(uri, jwks, ceiling)
        return jwks

    def _may_refresh(self, uri: str) -> bool:
        with self._lock:
            if self._refreshed.get(uri):
                return False
            self._refreshed.put(uri, True, self._refresh_interval)
            return True


class RemoteClientKeys:
    """A :class:`~.clients.JWKSProvider` for clients that registered a ``jwks_uri``
    (``private_key_jwt`` by reference, RFC 7591 §2): registered ``jwks`` as they are, a
    ``jwks_uri`` through :class:`RemoteKeySets` (the outbound-fetch guard, D18)."""

    def __init__(self, key_sets: RemoteKeySets) -> None:
        self._key_sets = key_sets

    def __call__(self, client: Client, *, refresh: bool = False) -> Mapping[str, Any] | None:
        if client.jwks is not None or client.jwks_uri is None:
            return client.jwks
        return self._key_sets.get(client.jwks_uri, refresh=refresh)
