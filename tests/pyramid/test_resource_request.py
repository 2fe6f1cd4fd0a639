"""The request adapter: canonical URL and scheme (DESIGN.md rule 1, D23), client certificates
(RFC 9440, D14), and the typed identity (D10)."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
from resource_support import certificate

from pyramid_attesto.core.errors import ConfigurationError, InvalidRequest
from pyramid_attesto.identity import AttestoIdentity
from pyramid_attesto.request import (
    RequestAdapter,
    default_certificate_source,
    parse_public_url,
    request_path,
)

PROXY = ipaddress.ip_network("10.0.0.0/8")


def environ(**extra: Any) -> dict[str, Any]:
    base = {
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "internal:8080",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/reports",
        "REMOTE_ADDR": "10.1.1.1",
    }
    base.update(extra)
    return base


def adapter(**kwargs: Any) -> RequestAdapter:
    return RequestAdapter(default_url="https://api.example", **kwargs)


def test_the_default_url_wins_over_the_host_header_rule1() -> None:
    a = adapter()
    assert a.canonical_url(environ(HTTP_HOST="evil.example")) == "https://api.example/api/reports"


def test_forwarded_headers_are_ignored_from_untrusted_peers_rule1() -> None:
    a = adapter()  # no trusted proxies at all
    env = environ(HTTP_X_FORWARDED_HOST="evil.example", HTTP_X_FORWARDED_PROTO="http")
    assert a.canonical_url(env) == "https://api.example/api/reports"
    b = adapter(trusted_proxies=[PROXY])
    env["REMOTE_ADDR"] = "192.0.2.1"
    assert b.canonical_url(env) == "https://api.example/api/reports"
    assert b.scheme(env) == "http"  # the socket's own scheme, not the forged header


def test_x_forwarded_headers_from_a_trusted_proxy_rule1() -> None:
    a = adapter(trusted_proxies=[PROXY])
    env = environ(
        HTTP_X_FORWARDED_HOST="Edge.Example",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_PORT="8443",
        HTTP_X_FORWARDED_PREFIX="/svc/",
    )
    assert a.canonical_url(env) == "https://edge.example:8443/svc/api/reports"
    assert a.scheme(env) == "https"


def test_the_last_forwarded_element_is_the_trusted_proxys_rfc7239_4() -> None:
    a = adapter(trusted_proxies=[PROXY])
    forwarded = 'for=1.2.3.4;host=evil.example, for=5.6.7.8;proto=https;host="edge.example:443"'
    env = environ(HTTP_FORWARDED=forwarded)
    assert a.canonical_url(env) == "https://edge.example/api/reports"


@pytest.mark.parametrize(
    "host", ["evil.example/path", "user@evil.example", "a b", "evil.example:99999x"]
)
def test_a_malformed_forwarded_host_is_ignored(host: str) -> None:
    a = adapter(trusted_proxies=[PROXY])
    env = environ(HTTP_X_FORWARDED_HOST=host, HTTP_X_FORWARDED_PROTO="gopher")
    assert a.canonical_url(env) == "https://api.example/api/reports"


def test_an_explicit_public_url_wins_over_everything_rule1() -> None:
    a = adapter(public_url="https://Public.Example:443/mount/", trusted_proxies=[PROXY])
    env = environ(HTTP_X_FORWARDED_HOST="edge.example", HTTP_X_FORWARDED_PROTO="http")
    assert a.canonical_url(env) == "https://public.example/mount/api/reports"
    assert a.scheme(env) == "https"


def test_script_name_and_the_raw_path_are_kept() -> None:
    assert request_path({"SCRIPT_NAME": "/app", "PATH_INFO": "/a b"}) == "/app/a%20b"
    # The raw request URI keeps %2F when it decodes to the same path.
    raw = {"PATH_INFO": "/a/b", "REQUEST_URI": "/a%2Fb?x=1"}
    assert request_path(raw) == "/a%2Fb"
    absolute = {"PATH_INFO": "/a", "REQUEST_URI": "https://h/a"}
    assert request_path(absolute) == "/a"
    # A raw URI that disagrees with the routed path is not trusted.
    assert request_path({"PATH_INFO": "/a", "REQUEST_URI": "/b"}) == "/a"
    assert request_path({"PATH_INFO": ""}) == "/"


@pytest.mark.parametrize(
    "value",
    [
        "api.example",
        "ftp://api.example",
        "https://api.example?x",
        "https://u@api.example",
        "https://",
    ],
)
def test_a_bad_public_url_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"attesto\.public_url"):
        parse_public_url("attesto.public_url", value)


def test_a_bad_peer_address_is_not_trusted() -> None:
    a = adapter(trusted_proxies=[PROXY])
    assert not a.peer_is_trusted({"REMOTE_ADDR": "not-an-ip"})
    assert not a.peer_is_trusted({})
    assert a.peer_is_trusted({"REMOTE_ADDR": "10.9.9.9"})


# -- client certificates (D14) ----------------------------------------------------------------


def test_certificates_come_from_a_trusted_proxy_or_the_tls_server_d14() -> None:
    der, pem = certificate()
    header = ":" + base64.b64encode(der).decode() + ":"
    a = adapter(trusted_proxies=[PROXY])
    from_proxy = a.client_certificate(environ(HTTP_CLIENT_CERT=header))
    assert from_proxy is not None
    assert (from_proxy.der, from_proxy.chain_validated) == (der, False)
    assert a.client_certificate(environ(HTTP_CLIENT_CERT=header, REMOTE_ADDR="192.0.2.1")) is None
    direct = a.client_certificate(environ(SSL_CLIENT_CERT=pem, SSL_CLIENT_VERIFY="SUCCESS"))
    assert direct is not None
    assert (direct.der, direct.chain_validated, direct.validated_by) == (der, True, "server")
    with pytest.raises(InvalidRequest):
        a.client_certificate(environ(SSL_CLIENT_CERT="garbage"))


def test_a_proxy_that_validates_chains_says_so_d14() -> None:
    der, _ = certificate()
    source = default_certificate_source(proxy_validates_chain=True)
    found = source({"HTTP_CLIENT_CERT": ":" + base64.b64encode(der).decode() + ":"}, trusted=True)
    assert found is not None
    assert found.chain_validated
    assert found.validated_by == "proxy"


# -- the identity (D10) ---------------------------------------------------------------------


def test_the_identity_is_read_only_and_loads_its_principal_once_d10() -> None:
    calls: list[str] = []

    def loader(identity: AttestoIdentity) -> str:
        calls.append(identity.subject)
        return "principal"

    identity = AttestoIdentity(
        subject="s",
        kind="client",
        client_id="c",
        scopes=("read:*",),
        claims={"sub": "s"},
        token_type="DPoP",
        cnf={"jkt": "x"},
        principal_loader=loader,
    )
    assert calls == []
    assert identity.principal == "principal"
    assert identity.principal == "principal"
    assert calls == ["s"]
    assert identity.is_client
    assert not identity.is_user
    assert identity.sender_constrained
    assert identity.covers("read:reports")
    assert not identity.covers("write:reports")
    with pytest.raises(AttributeError, match="read-only"):
        identity.subject = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        identity.claims["sub"] = "other"  # type: ignore[index]
    assert "s" in repr(identity)
    assert (
        AttestoIdentity(
            subject="s", kind=None, client_id=None, scopes=(), claims={}, token_type="Bearer"
        ).principal
        is None
    )
