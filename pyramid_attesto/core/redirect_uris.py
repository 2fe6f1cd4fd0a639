"""Redirect URIs: matching at authorization time, validation at registration time.

Matching (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3, DESIGN.md rule 5) is simple string comparison
against the registered values: no case folding, no percent-decoding, no default-port or
trailing-slash normalisation, no subset of query parameters. The one exception is the port
of a loopback redirect (RFC 8252 §7.3): when ``allow_loopback_any_port`` is on (for native
clients), ``http://127.0.0.1:<any port><rest>`` and ``http://[::1]:<any port><rest>`` match a
registered loopback URI with the same host literal and the same ``<rest>``, and
``http://localhost`` does so only with ``allow_localhost`` (RFC 8252 §8.3 discourages it; some
MCP clients register it). That exception is parsed with a strict pattern rather than a
general URL parser, so userinfo (``@``), backslashes, ``;`` parameters, fragments and look-alike
hosts such as ``127.0.0.1.evil.example`` never reach it.

Registration (RFC 6749 §3.1.2, RFC 7591 §2, RFC 8252 §7.1-7.3 and §8.4, OpenID Connect
Dynamic Client Registration §2) accepts only URIs that a browser, this server and the
client all read the same way:

* absolute, ASCII, at most :data:`MAX_REDIRECT_URI_LENGTH` characters, made only of RFC 3986
  characters, well-formed percent-escapes, no encoded control characters or backslash;
* no fragment (not even a bare ``#``), no userinfo, no ``*`` (nothing is a wildcard), no
  ``.`` or ``..`` path segments;
* lowercase scheme and host (the form compliant clients send, RFC 3986 §6.2.2.1); hosts
  are DNS names (IDNs as punycode A-labels) or IP literals, ports 1-65535 without leading
  zeros;
* web clients: ``https`` only;
* native clients: ``https`` (claimed URLs, RFC 8252 §7.2), ``http`` on a loopback literal
  (``127.0.0.1``, ``[::1]``, and ``localhost`` unless ``allow_localhost`` is off; §7.3 and
  §8.3), or a private-use scheme in reverse-domain form such as ``com.example.app:/cb``
  (§7.1: the dot keeps out ``javascript:``, ``data:``, ``file:`` and friends).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from .clients import Client
from .errors import InvalidRedirectURI

__all__ = [
    "MAX_REDIRECT_URI_LENGTH",
    "match_client_redirect_uri",
    "match_redirect_uri",
    "validate_redirect_uri_for_registration",
]

MAX_REDIRECT_URI_LENGTH = 2048

# RFC 3986 §2: unreserved, reserved and "%". Excludes "#" (no fragment is ever accepted),
# "\", whitespace, controls, quotes, "<>^`{|}" and anything non-ASCII.
_URI_CHARS = re.compile(r"\A[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+\Z")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff]|5[Cc])")
_SCHEME = re.compile(r"\A([A-Za-z][A-Za-z0-9+.\-]*):")
_REVERSE_DOMAIN = re.compile(r"\A[a-z][a-z0-9+\-]*(?:\.[a-z0-9+\-]+)+\Z")
_DNS_LABEL = re.compile(r"\A(?!-)[a-z0-9\-]{1,63}(?<!-)\Z")
_PORT = re.compile(r"\A[1-9][0-9]{0,4}\Z")
_DOT_SEGMENT = re.compile(r"\A(?:\.|%2[Ee]){1,2}\Z")

# RFC 8252 §7.3: the only shape that may differ from the registration, and only in its port.
_LOOPBACK = re.compile(
    r"\Ahttp://(?P<host>127\.0\.0\.1|\[::1\]|localhost)"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<rest>[/?].*)?\Z",
    re.DOTALL,
)


class _Loopback(NamedTuple):
    host: str
    rest: str


def _loopback(uri: str, allow_localhost: bool) -> _Loopback | None:
    match = _LOOPBACK.match(uri)
    if match is None:
        return None
    host = match.group("host")
    port = match.group("port")
    if host == "localhost" and not allow_localhost:
        return None
    if port is not None and int(port) > 65535:
        return None
    return _Loopback(host, match.group("rest") or "")


def match_redirect_uri(
    requested: str,
    registered: Sequence[str],
    *,
    allow_loopback_any_port: bool,
    allow_localhost: bool,
) -> bool:
    """Whether ``requested`` is one of the ``registered`` redirect URIs.

    Exact string comparison, except the port of a loopback redirect when
    ``allow_loopback_any_port`` is on (pass it for native clients):

    >>> match_redirect_uri("https://app.example/cb", ["https://app.example/cb"],
    ...                    allow_loopback_any_port=False, allow_localhost=False)
    True
    >>> match_redirect_uri("https://app.example/cb?x=1", ["https://app.example/cb"],
    ...                    allow_loopback_any_port=False, allow_localhost=False)
    False
    >>> match_redirect_uri("http://127.0.0.1:53412/cb", ["http://127.0.0.1/cb"],
    ...                    allow_loopback_any_port=True, allow_localhost=False)
    True

    A requested URI with a fragment, whitespace, a backslash or any character outside
    RFC 3986 never matches, whatever was registered.
    """
    if (
        not isinstance(requested, str)
        or len(requested) > MAX_REDIRECT_URI_LENGTH
        or not _URI_CHARS.match(requested)
    ):
        return False
    if any(requested == uri for uri in registered):
        return True
    if not allow_loopback_any_port:
        return False
    wanted = _loopback(requested, allow_localhost)
    if wanted is None:
        return False
    return any(_loopback(uri, allow_localhost) == wanted for uri in registered)


def match_client_redirect_uri(client: Client, requested: str, *, allow_localhost: bool) -> bool:
    """:func:`match_redirect_uri` against ``client.redirect_uris``, with the any-port
    loopback exception for native clients only (RFC 8252 §7.3, DESIGN.md rule 5)."""
    return match_redirect_uri(
        requested,
        client.redirect_uris,
        allow_loopback_any_port=client.native,
        allow_localhost=allow_localhost,
    )


def _refuse(description: str, reason: str) -> InvalidRedirectURI:
    return InvalidRedirectURI(description, reason=reason)


def validate_redirect_uri_for_registration(
    uri: str,
    application_type: Literal["web", "native"],
    *,
    allow_localhost: bool = True,
) -> None:
    """Raise :class:`~.errors.InvalidRedirectURI` unless ``uri`` may be registered.

    The rules are in the module documentation. ``allow_localhost=False`` also refuses
    ``http://localhost`` redirect URIs for native clients (RFC 8252 §8.3).

    >>> validate_redirect_uri_for_registration("com.example.app:/oauth2redirect", "native")
    >>> validate_redirect_uri_for_registration("http://app.example/cb", "web")
    Traceback (most recent call last):
      ...
    pyramid_attesto.core.errors.InvalidRedirectURI: a web client's redirect URI must use https
    """
    if not isinstance(uri, str) or not uri:
        raise _refuse("a redirect URI must be a non-empty string", "empty")
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise _refuse("the redirect URI is too long", "too_long")
    if not uri.isascii():
        raise _refuse("the redirect URI must be ASCII (IDN hosts as punycode)", "not_ascii")
    if any(ch <= " " or ch == "\x7f" for ch in uri):
        raise _refuse("the redirect URI contains whitespace or control characters", "control")
    if "\\" in uri:
        raise _refuse("the redirect URI contains a backslash", "backslash")
    if "#" in uri:
        raise _refuse("the redirect URI must not have a fragment (RFC 6749 3.1.2)", "fragment")
    if "*" in uri:
        raise _refuse("the redirect URI must not contain a wildcard", "wildcard")
    if not _URI_CHARS.match(uri) or _BAD_ESCAPE.search(uri):
        raise _refuse("the redirect URI is not a valid RFC 3986 URI", "invalid_chars")
    if _ENCODED_CONTROL.search(uri):
        raise _refuse("the redirect URI encodes a control character or backslash", "encoded")
    match = _SCHEME.match(uri)
    if match is None:
        raise _refuse("the redirect URI must be absolute", "not_absolute")
    scheme = match.group(1)
    if scheme != scheme.lower():
        raise _refuse("the redirect URI scheme must be lowercase", "scheme_case")
    rest = uri[match.end() :]

    if scheme in ("http", "https"):
        host = _check_web_uri(uri, rest)
        if scheme == "https":
            return
        if application_type != "native":
            raise _refuse("a web client's redirect URI must use https", "not_https")
        if host not in ("127.0.0.1", "[::1]", "localhost"):
            raise _refuse("http redirect URIs are only for loopback (RFC 8252 7.3)", "not_loopback")
        if host == "localhost" and not allow_localhost:
            raise _refuse(
                "use 127.0.0.1 or [::1] rather than localhost (RFC 8252 8.3)", "localhost"
            )
        return

    if application_type != "native":
        raise _refuse("a web client's redirect URI must use https", "not_https")
    if not _REVERSE_DOMAIN.match(scheme):
        raise _refuse(
            "a private-use URI scheme must be in reverse domain form (RFC 8252 7.1)",
            "not_reverse_domain",
        )
    if rest.startswith("//"):
        authority = re.split(r"[/?]", rest[2:], maxsplit=1)[0]
        if "@" in authority:
            raise _refuse("the redirect URI must not contain userinfo", "userinfo")
        path = rest[2 + len(authority) :]
    else:
        path = rest
    if not rest.strip("/"):
        raise _refuse("the redirect URI has no path", "empty_path")
    _check_path(path)


def _check_web_uri(uri: str, rest: str) -> str:
    """Validate an http(s) URI's authority and path; return its host (IPv6 in brackets)."""
    if not rest.startswith("//"):
        raise _refuse("the redirect URI has no host", "no_host")
    authority, _, _ = rest[2:].partition("/")
    authority = authority.partition("?")[0]
    if "@" in authority:
        raise _refuse("the redirect URI must not contain userinfo", "userinfo")
    if authority.startswith("["):
        end = authority.find("]")
        host, port_part = authority[: end + 1], authority[end + 1 :]
        if end < 0 or not _ipv6(host[1:-1]):
            raise _refuse("the redirect URI host is not a valid IP literal", "bad_host")
    else:
        host, colon, port_part = authority.partition(":")
        port_part = colon + port_part
        if not host or not _dns_name_or_ipv4(host):
            raise _refuse("the redirect URI host is not a valid host name", "bad_host")
    if host != host.lower():
        raise _refuse("the redirect URI host must be lowercase", "host_case")
    port: int | None = None
    if port_part:
        digits = port_part[1:]
        if not port_part.startswith(":") or not _PORT.match(digits) or int(digits) > 65535:
            raise _refuse("the redirect URI port is invalid", "bad_port")
        port = int(digits)
    path = rest[2 + len(authority) :]
    _check_path(path)
    # A second opinion: a general parser must read the same host, port and no userinfo.
    try:
        parts = urlsplit(uri)
        same = (
            parts.hostname == host.strip("[]")
            and parts.port == port
            and parts.username is None
            and parts.password is None
        )
    except ValueError:
        same = False
    if not same:  # pragma: no cover - the strict checks above leave no known disagreement
        raise _refuse("the redirect URI is ambiguous", "ambiguous")
    return host


def _check_path(path_and_query: str) -> None:
    path = path_and_query.partition("?")[0]
    if any(_DOT_SEGMENT.match(segment) for segment in path.split("/")):
        raise _refuse("the redirect URI path must not contain . or .. segments", "dot_segment")


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return "%" not in text


def _dns_name_or_ipv4(host: str) -> bool:
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    lowered = host.lower()
    if len(lowered) > 253:
        return False
    labels = lowered.split(".")
    # The last label of a DNS name is never all digits (it would read as an IPv4 address).
    return all(_DNS_LABEL.match(label) for label in labels) and not labels[-1].isdigit()
