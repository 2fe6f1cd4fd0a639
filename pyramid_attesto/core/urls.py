"""Canonical HTTP URLs for comparison: DPoP ``htu`` (RFC 9449 §4.3) and DESIGN.md rule 1.

RFC 9449 §4.3 compares the ``htu`` claim with the URL of the request "ignoring any query and
fragment parts", after the syntax-based and scheme-based normalisation of RFC 3986 §6.2.2 and
§6.2.3. :func:`normalize_htu` applies exactly that, and nothing more:

- the scheme and host are lowercased (§6.2.2.1); the scheme must be ``http`` or ``https``;
- percent-encodings get uppercase hex digits (§6.2.2.1), and those that encode an unreserved
  character (``A-Z a-z 0-9 - . _ ~``) are decoded (§6.2.2.2) — ``%2F`` and every other
  reserved character stay encoded, because decoding them changes the path's meaning;
- the default port (80 for http, 443 for https) and an empty port are removed, and an empty
  path becomes ``/`` (§6.2.3);
- the query and the fragment are dropped (RFC 9449 §4.2: ``htu`` has none).

Dot-segments are *not* removed (§6.2.2.3 is left out on purpose: ``/a/../b`` names another
resource as far as a router is concerned), trailing slashes stay significant, and the path is
otherwise compared byte for byte. A URL with userinfo, a relative reference, another scheme,
an empty host, a malformed percent-encoding or a character outside RFC 3986 is refused with
:class:`InvalidURL`. Hosts are compared in their ASCII form: an IDN must arrive as punycode
(``xn--…``), which is kept as it is.

>>> normalize_htu("HTTPS://Server.Example.COM:443/%7euser/a%2fb?q=1#top")
'https://server.example.com/~user/a%2Fb'
>>> htu_matches("https://server.example.com/token", "https://SERVER.example.com:443/token")
True
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

__all__ = ["DEFAULT_PORTS", "InvalidURL", "htu_matches", "normalize_htu"]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}

# RFC 3986 Appendix B, narrowed to absolute URIs with an authority (every http(s) URL has one).
_ABSOLUTE = re.compile(r"\A([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^?#]*)(?:[?#].*)?\Z", re.DOTALL)
_HAS_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.\-]*:")
# RFC 3986 §3.3 path-abempty: pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
_PATH = re.compile(r"\A(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*\Z")
# RFC 3986 §3.2.2 reg-name (an IPv4address is a reg-name syntactically).
_REG_NAME = re.compile(r"\A(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+\Z")
_PORT = re.compile(r"\A[0-9]*\Z")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class InvalidURL(ValueError):
    """A URL that cannot take part in an ``htu`` comparison; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a usable http(s) URL: {reason}")
        self.reason = reason


def _pct_normalize(text: str) -> str:
    """RFC 3986 §6.2.2.1-2: uppercase hex digits, decode the unreserved characters."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PCT.sub(fix, text)


def _normalize_host(host: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidURL("host")
        literal = host[1:-1]
        # IPvFuture and zone identifiers (RFC 6874) have no place in a public URL.
        if "%" in literal:
            raise InvalidURL("host")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise InvalidURL("host") from None
        return "[" + literal.lower() + "]"
    if not _REG_NAME.match(host):
        raise InvalidURL("host")
    if "%" not in host:
        return host.lower()
    # Lowercase the characters, not the hex digits of what stays percent-encoded.
    return "".join(
        part if part.startswith("%") else part.lower()
        for part in re.split(r"(%[0-9A-F]{2})", _pct_normalize(host))
    )


def normalize_htu(url: str) -> str:
    """Return the canonical form of an http(s) URL for an ``htu`` comparison.

    Raises :class:`InvalidURL` (a :class:`ValueError`) for anything that is not an absolute
    ``http``/``https`` URL without userinfo.
    """
    if not isinstance(url, str):
        raise InvalidURL("type")
    match = _ABSOLUTE.match(url)
    if match is None:
        raise InvalidURL("scheme" if _HAS_SCHEME.match(url) else "not_absolute")
    scheme, authority, path = match.groups()
    scheme = scheme.lower()
    default_port = DEFAULT_PORTS.get(scheme)
    if default_port is None:
        raise InvalidURL("scheme")
    if "@" in authority:
        raise InvalidURL("userinfo")

    if authority.startswith("["):
        end = authority.find("]")
        host, port = authority[: end + 1], authority[end + 1 :]
        if port and not port.startswith(":"):
            raise InvalidURL("host")
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
    if not host:
        raise InvalidURL("host")
    if not _PORT.match(port) or len(port) > 5:
        raise InvalidURL("port")
    host = _normalize_host(host)
    port_part = ""
    if port:
        number = int(port)
        if not 0 < number <= 65535:
            raise InvalidURL("port")
        if number != default_port:
            port_part = f":{number}"

    if not _PATH.match(path):
        raise InvalidURL("path")
    if "%" in path:
        path = _pct_normalize(path)
    return f"{scheme}://{host}{port_part}{path or '/'}"


def htu_matches(claimed: str, expected: str) -> bool:
    """Whether two URLs are the same ``htu`` (RFC 9449 §4.3); ``False`` if either is unusable."""
    try:
        if claimed == expected:
            normalize_htu(expected)
            return True
        return normalize_htu(claimed) == normalize_htu(expected)
    except InvalidURL:
        return False
