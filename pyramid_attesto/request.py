"""The request adapter: what attesto may believe about a WSGI request.

DESIGN.md rule 1 and D23: the URL a DPoP proof is compared with, and the scheme the HTTPS gate
looks at, never come from the raw ``Host`` header. :class:`RequestAdapter` resolves them in
this order:

1. an explicitly configured public URL (``attesto.public_url``): always;
2. otherwise, when the socket peer (``REMOTE_ADDR``) is in ``trusted_proxies``, what that
   proxy says in ``Forwarded`` (RFC 7239; the last element, the one the trusted peer added)
   or ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` / ``X-Forwarded-Port`` /
   ``X-Forwarded-Prefix``;
3. otherwise the default public URL (the issuer's origin for an authorization server, the
   first resource's origin for a resource server).

A forged ``X-Forwarded-*`` from an untrusted peer changes nothing. The canonical URL is that
base, then ``SCRIPT_NAME`` and ``PATH_INFO`` as the client spelled them (the server's raw
request URI when it agrees with the decoded path, so ``%2F`` stays ``%2F``), without query.

Client certificates (RFC 8705, DESIGN.md D14) come from the RFC 9440 ``Client-Cert`` header
sent by a trusted proxy, or from ``SSL_CLIENT_CERT`` (PEM) set by a TLS-terminating WSGI
server; anything else is ignored. The :class:`~pyramid_attesto.core.mtls.ClientCertificate`
says whether the chain was validated by whoever terminated TLS (``SSL_CLIENT_VERIFY=SUCCESS``,
or a proxy configured to validate chains) — the binding check of a resource server does not
need it, ``tls_client_auth`` does.

This module serves both the resource-server policy and the authorization-server views.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

from .core.errors import ConfigurationError, InvalidRequest
from .core.mtls import ClientCertificate, ssl_client_verify_succeeded

__all__ = [
    "CertificateSource",
    "Network",
    "RequestAdapter",
    "default_certificate_source",
    "parse_public_url",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Environ = Mapping[str, Any]

# RFC 3986 host[:port] (reg-name, IPv4 or bracketed IPv6) as a forwarded host may carry it.
_HOST_PORT = re.compile(r"\A(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_~%]+)(?::[0-9]{1,5})?\Z")
_PREFIX = re.compile(r"\A(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+\Z")
_PATH_SAFE = "/:@!$&'()*+,;="
_PLAIN_PATH = re.compile(r"\A[A-Za-z0-9/\-._~]*\Z")


def parse_public_url(key: str, value: str) -> str:
    """Validate a public base URL (``scheme://host[:port][/prefix]``) and return it without a
    trailing slash; :class:`ConfigurationError` naming ``key`` otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{key}: an absolute http(s) URL, e.g. https://api.example")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigurationError(f"{key}: no query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"{key}: no userinfo")
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    default = {"http": ":80", "https": ":443"}[scheme]
    if netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


class CertificateSource(Protocol):
    """Finds the request's client certificate (a D24 deployment hook).

    ``trusted`` says whether the socket peer is a trusted proxy: a header-borne certificate
    must be ignored otherwise. A certificate that cannot be parsed raises
    :class:`~pyramid_attesto.core.errors.InvalidRequest` (``reason="invalid_certificate"``).
    """

    def __call__(self, environ: Environ, *, trusted: bool) -> ClientCertificate | None: ...


def default_certificate_source(
    proxy_validates_chain: bool = False,
) -> CertificateSource:
    """The D14 source: ``Client-Cert`` (RFC 9440) from a trusted proxy, else
    ``SSL_CLIENT_CERT`` from a TLS-terminating WSGI server, validated when
    ``SSL_CLIENT_VERIFY`` says ``SUCCESS``.

    ``proxy_validates_chain`` states that the trusted proxy forwards only certificates whose
    chain it validated (e.g. nginx ``ssl_verify_client on``).
    """

    def source(environ: Environ, *, trusted: bool) -> ClientCertificate | None:
        if trusted:
            header = environ.get("HTTP_CLIENT_CERT")
            if header:
                return ClientCertificate.from_client_cert_header(
                    header,
                    chain_validated=proxy_validates_chain,
                    validated_by="proxy" if proxy_validates_chain else None,
                )
        pem = environ.get("SSL_CLIENT_CERT")
        if pem:
            verified = ssl_client_verify_succeeded(environ.get("SSL_CLIENT_VERIFY"))
            return ClientCertificate.from_pem(
                pem, chain_validated=verified, validated_by="server" if verified else None
            )
        return None

    return source


def _last(value: str) -> str:
    return value.rsplit(",", 1)[-1].strip(" \t")


def _forwarded_pairs(value: str) -> dict[str, str]:
    """The parameters of the last element of an RFC 7239 ``Forwarded`` field."""
    element = _last(value)
    pairs: dict[str, str] = {}
    for part in element.split(";"):
        name, sep, raw = part.partition("=")
        if not sep:
            continue
        raw = raw.strip(" \t")
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        pairs[name.strip(" \t").lower()] = raw
    return pairs


class RequestAdapter:
    """Resolves the public scheme, base URL and canonical URL of a request, and its client
    certificate, believing forwarding headers only from ``trusted_proxies``.

    >>> adapter = RequestAdapter(default_url="https://api.example")
    >>> adapter.canonical_url({"PATH_INFO": "/reports", "HTTP_HOST": "evil.example",
    ...                        "wsgi.url_scheme": "http", "REMOTE_ADDR": "203.0.113.9"})
    'https://api.example/reports'
    """

    __slots__ = ("_base", "_certificates", "_explicit", "_scheme", "trusted_proxies")

    def __init__(
        self,
        *,
        default_url: str,
        public_url: str | None = None,
        trusted_proxies: Sequence[Network] = (),
        certificate_source: CertificateSource | None = None,
    ) -> None:
        self._explicit = public_url is not None
        self._base = parse_public_url(
            "attesto.public_url", public_url if public_url is not None else default_url
        )
        self._scheme = self._base.split(":", 1)[0]
        self.trusted_proxies = tuple(trusted_proxies)
        self._certificates = certificate_source or default_certificate_source()

    def peer_is_trusted(self, environ: Environ) -> bool:
        """Whether the socket peer is one of the trusted proxies."""
        if not self.trusted_proxies:
            return False
        peer = environ.get("REMOTE_ADDR")
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    def _forwarded(self, environ: Environ) -> tuple[str | None, str | None, str]:
        """(scheme, host, prefix) a trusted proxy states; ``None`` where it says nothing."""
        scheme = host = None
        prefix = ""
        forwarded = environ.get("HTTP_FORWARDED")
        if forwarded:
            pairs = _forwarded_pairs(forwarded)
            scheme, host = pairs.get("proto"), pairs.get("host")
        else:
            if xf_proto := environ.get("HTTP_X_FORWARDED_PROTO"):
                scheme = _last(xf_proto)
            if xf_host := environ.get("HTTP_X_FORWARDED_HOST"):
                host = _last(xf_host)
                if (xf_port := environ.get("HTTP_X_FORWARDED_PORT")) and ":" not in host:
                    host = f"{host}:{_last(xf_port)}"
        if xf_prefix := environ.get("HTTP_X_FORWARDED_PREFIX"):
            candidate = _last(xf_prefix).rstrip("/")
            if _PREFIX.match(candidate):
                prefix = candidate
        if scheme is not None:
            scheme = scheme.lower()
            if scheme not in ("http", "https"):
                scheme = None
        if host is not None and not _HOST_PORT.match(host):
            host = None
        return scheme, host, prefix

    def scheme(self, environ: Environ) -> str:
        """The scheme the client used: the configured one, a trusted proxy's, or the default's.

        With an explicit public URL that is its scheme; otherwise a trusted proxy's word, or
        ``wsgi.url_scheme`` when the peer is not a proxy (D23: the HTTPS gate looks here).
        """
        if self._explicit:
            return self._scheme
        if self.peer_is_trusted(environ):
            scheme, _, _ = self._forwarded(environ)
            if scheme is not None:
                return scheme
        return str(environ.get("wsgi.url_scheme", "http")).lower()

    def base_url(self, environ: Environ) -> str:
        """The public URL of the application root (no trailing slash)."""
        if self._explicit or not self.trusted_proxies or not self.peer_is_trusted(environ):
            return self._base
        scheme, host, prefix = self._forwarded(environ)
        if scheme is None and host is None and not prefix:
            return self._base
        parts = urlsplit(self._base)
        scheme = scheme or parts.scheme
        host = (host or parts.netloc).lower()
        default = {"http": ":80", "https": ":443"}[scheme]
        if host.endswith(default):
            host = host[: -len(default)]
        return f"{scheme}://{host}{prefix or parts.path}"

    def canonical_url(self, environ: Environ) -> str:
        """The URL the client addressed, without query: for DPoP ``htu`` and redirects."""
        return self.base_url(environ) + request_path(environ)

    def client_certificate(self, environ: Environ) -> ClientCertificate | None:
        """The client certificate of this request, if any trustworthy source presents one."""
        return self._certificates(environ, trusted=self.peer_is_trusted(environ))

    def presented_certificate(self, environ: Environ) -> ClientCertificate | None:
        """:meth:`client_certificate`, with an unparseable certificate taken as absent: the
        check that needs one (a bound token, ``tls_client_auth``) then fails on its own."""
        try:
            return self.client_certificate(environ)
        except InvalidRequest:
            return None


def request_path(environ: Environ) -> str:
    """``SCRIPT_NAME + PATH_INFO`` as the client spelled it (percent-encoded), no query.

    The server's raw request URI (``REQUEST_URI`` / ``RAW_URI``) is used when it decodes to
    the same path, so reserved escapes such as ``%2F`` survive; otherwise the decoded path is
    re-encoded.
    """
    # PEP 3333: the decoded path is carried as latin-1 text.
    path: str = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if path and _PLAIN_PATH.match(path) and (not raw or raw == path or raw.startswith(path + "?")):
        return path  # nothing to encode, and the raw URI (if any) spells it the same way
    if raw:
        raw_path = str(raw).split("?", 1)[0].split("#", 1)[0]
        if raw_path.startswith(("http://", "https://")):  # absolute-form request target
            slash = raw_path.find("/", raw_path.find("//") + 2)
            raw_path = raw_path[slash:] if slash >= 0 else "/"
        if raw_path and unquote(raw_path, encoding="latin-1") == path:
            return raw_path
    return quote(path, safe=_PATH_SAFE, encoding="latin-1") or "/"
