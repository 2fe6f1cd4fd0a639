"""The outbound-fetch guard (DESIGN.md D18; RFC 9700 §4.16 SSRF; the CIMD draft's security
considerations): refused URLs and addresses, redirects, size and time limits, caps.

Address refusals run against the real guard with a fake resolver: nothing is fetched. The
response-side cases (redirect, size, slowness, TLS name) use the loopback HTTPS server of
``fetch_support``, reachable only because those tests inject a resolver answering 127.0.0.1
and an address check that allows loopback.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from fetch_support import LoopbackServer, drip, https_server

from pyramid_attesto.core.cimd import MetadataDocumentPolicy, MetadataDocumentResolver
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import InvalidClient
from pyramid_attesto.core.outbound import FetchRefused, IPAddress, is_public_address
from pyramid_attesto.fetch import FetchLimits, GuardedFetcher

# -- fixtures ------------------------------------------------------------------------------


class FakeResolver:
    """Answers from a table and counts calls; never touches DNS."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError("unknown host")
        return self.table[host]


def loopback_allowed(address: IPAddress) -> bool:
    return address == ipaddress.ip_address("127.0.0.1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    with https_server(Path(tmp_path_factory.mktemp("tls"))) as running:
        yield running


def guard(resolver: FakeResolver | None = None, **limits: float) -> GuardedFetcher:
    """The production guard (real address check), with a fake resolver."""
    return GuardedFetcher(
        FetchLimits(**limits),  # type: ignore[arg-type]
        clock=FrozenClock(),
        resolver=resolver or FakeResolver({}),
    )


def loopback_guard(
    server: LoopbackServer, clock: FrozenClock | None = None, **limits: float
) -> GuardedFetcher:
    """The guard with the address check overridden so it may reach the loopback server."""
    return GuardedFetcher(
        FetchLimits(**limits),  # type: ignore[arg-type]
        clock=clock or FrozenClock(),
        resolver=FakeResolver({"cimd.test": ["127.0.0.1"], "jwks.test": ["127.0.0.1"]}),
        address_allowed=loopback_allowed,
        ssl_context=server.client_context,
    )


def refused(fetcher: GuardedFetcher, url: str) -> str:
    with pytest.raises(FetchRefused) as caught:
        fetcher.fetch(url)
    return caught.value.reason


# -- the address matrix --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/client.json",
        "https://127.8.9.10/client.json",
        "https://[::1]/client.json",
        "https://10.0.0.1/client.json",
        "https://10.255.255.254/client.json",
        "https://172.16.0.1/client.json",
        "https://172.31.255.254/client.json",
        "https://192.168.1.1/client.json",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/client.json",
        "https://[::ffff:a9fe:a9fe]/client.json",
        "https://100.64.0.1/client.json",
        "https://0.0.0.0/client.json",
        "https://224.0.0.251/client.json",
        "https://240.0.0.1/client.json",
        "https://255.255.255.255/client.json",
        "https://[fc00::1]/client.json",
        "https://[fe80::1]/client.json",
        "https://[ff02::1]/client.json",
        "https://[2002:7f00:1::1]/client.json",
        "https://[64:ff9b::7f00:1]/client.json",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/client.json",
        "https://[::127.0.0.1]/client.json",
        "https://[2001:db8::1]/client.json",
    ],
)
def test_non_public_ip_literals_are_refused_rfc9700_4_16(url: str) -> None:
    """Loopback, RFC 1918, link-local (cloud metadata), shared, multicast, reserved,
    documentation and IPv4-embedding IPv6 forms are never connected to."""
    resolver = FakeResolver({})
    assert refused(guard(resolver), url) == "private_address"
    assert resolver.calls == []  # an IP literal is not resolved


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/client.json",  # decimal 127.0.0.1
        "https://0177.0.0.1/client.json",  # octal
        "https://0x7f.0.0.1/client.json",  # hex
        "https://0x7f000001/client.json",
        "https://127.1/client.json",  # short form
        "https://017700000001/client.json",
    ],
)
def test_numeric_host_forms_are_refused_before_resolution_rfc9700_4_16(url: str) -> None:
    """``getaddrinfo`` reads these as 127.0.0.1; the guard refuses them as host names."""
    resolver = FakeResolver({})
    assert refused(guard(resolver), url) == "numeric_host"
    assert resolver.calls == []


@pytest.mark.parametrize("url", ["http://2130706433/client.json", "http://0177.0.0.1/client.json"])
def test_numeric_http_forms_are_refused_as_http(url: str) -> None:
    assert refused(guard(), url) == "not_https"


@pytest.mark.parametrize(
    "url",
    [
        "http://app.example/client.json",
        "HTTP://app.example/client.json",
        "ftp://app.example/client.json",
        "//app.example/client.json",
        "file:///etc/passwd",
    ],
)
def test_only_https_is_fetched(url: str) -> None:
    assert refused(guard(), url) == "not_https"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user@app.example/client.json", "userinfo"),
        ("https://user:pw@app.example/client.json", "userinfo"),
        ("https://app.example@127.0.0.1/client.json", "userinfo"),
        ("https://app.example/client.json#frag", "malformed"),
        ("https://app.example/c lient.json", "malformed"),
        ("https://app.ex\u00e4mple/client.json", "malformed"),
        ("https://app_example.test/client.json", "malformed"),
        ("https://app.example:0/client.json", "malformed"),
        ("https://app.example:65536/client.json", "malformed"),
        ("https://[::1/client.json", "malformed"),
        ("https://localhost/client.json", "private_address"),
        ("https://api.localhost/client.json", "private_address"),
        ("https://" + "a" * 2100 + ".example/", "malformed"),
    ],
)
def test_malformed_and_userinfo_urls_are_refused(url: str, reason: str) -> None:
    assert refused(guard(), url) == reason


def test_a_name_resolving_to_a_private_address_is_refused_rfc9700_4_16() -> None:
    resolver = FakeResolver({"internal.example": ["10.0.0.7"]})
    assert refused(guard(resolver), "https://internal.example/client.json") == "private_address"


def test_a_name_with_any_private_address_is_refused() -> None:
    """One public and one loopback answer: refused, whichever would have been picked."""
    resolver = FakeResolver({"mixed.example": ["93.184.215.14", "127.0.0.1"]})
    assert refused(guard(resolver), "https://mixed.example/client.json") == "private_address"


def test_a_name_resolving_to_an_ipv4_mapped_loopback_is_refused() -> None:
    resolver = FakeResolver({"sneaky.example": ["::ffff:127.0.0.1"]})
    assert refused(guard(resolver), "https://sneaky.example/client.json") == "private_address"


def test_an_unresolvable_name_is_refused() -> None:
    assert refused(guard(), "https://nowhere.example/client.json") == "dns"


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_pass_the_check(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


# -- against the loopback server -----------------------------------------------------------


def test_a_document_is_fetched_from_the_checked_address_with_the_name_in_sni_and_host(
    server: LoopbackServer,
) -> None:
    url = server.json("/ok.json", {"hello": "world"}, {"Cache-Control": "max-age=120"})
    fetcher = loopback_guard(server)
    document = fetcher.fetch(url)
    assert document.body == b'{"hello": "world"}'
    assert document.headers["cache-control"] == "max-age=120"
    assert server.seen[-1] == ("/ok.json", f"cimd.test:{server.port}")
    assert server.sni[-1] == "cimd.test"


def test_the_name_is_resolved_once_per_fetch(server: LoopbackServer) -> None:
    url = server.json("/once.json", {})
    fetcher = loopback_guard(server)
    fetcher.fetch(url)
    assert fetcher._resolver.calls == ["cimd.test"]  # type: ignore[attr-defined]


def test_a_redirect_is_refused_not_followed(server: LoopbackServer) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", "https://169.254.169.254/latest/meta-data/")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server.routes["/redirect.json"] = redirect
    before = len(server.seen)
    assert refused(loopback_guard(server), server.url("/redirect.json")) == "redirect"
    assert len(server.seen) == before + 1  # one request, the redirect was not followed


def test_an_error_status_is_refused(server: LoopbackServer) -> None:
    assert refused(loopback_guard(server), server.url("/missing.json")) == "status"


def test_an_oversized_body_with_content_length_is_refused(server: LoopbackServer) -> None:
    url = server.json("/big.json", {"pad": "x" * 6000})
    assert refused(loopback_guard(server), url) == "too_large"


def test_an_oversized_body_without_content_length_is_refused(server: LoopbackServer) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(8):
            handler.wfile.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    server.routes["/chunked.json"] = chunked
    assert refused(loopback_guard(server), server.url("/chunked.json")) == "too_large"


def test_exactly_the_limit_is_accepted(server: LoopbackServer) -> None:
    url = server.json("/limit.json", "x" * (5120 - 2))
    assert len(loopback_guard(server).fetch(url).body) == 5120


def test_a_slow_body_hits_the_deadline(server: LoopbackServer) -> None:
    server.routes["/slow.json"] = drip(b'{"client_id": "slow"}', 0.15)
    fetcher = loopback_guard(server, deadline=0.5, read_timeout=0.4)
    assert refused(fetcher, server.url("/slow.json")) == "timeout"


def test_a_silent_server_hits_the_read_timeout(server: LoopbackServer) -> None:
    stop = threading.Event()

    def silent(handler: BaseHTTPRequestHandler) -> None:
        stop.wait(2)

    server.routes["/silent.json"] = silent
    try:
        fetcher = loopback_guard(server, deadline=1.0, read_timeout=0.2)
        assert refused(fetcher, server.url("/silent.json")) == "timeout"
    finally:
        stop.set()


def test_a_certificate_for_another_name_is_refused(server: LoopbackServer) -> None:
    fetcher = GuardedFetcher(
        clock=FrozenClock(),
        resolver=FakeResolver({"other.test": ["127.0.0.1"]}),
        address_allowed=loopback_allowed,
        ssl_context=server.client_context,
    )
    assert refused(fetcher, server.url("/ok.json", host="other.test")) == "tls"


def test_an_encoded_response_is_refused(server: LoopbackServer) -> None:
    server.json("/gzip.json", {}, {"Content-Encoding": "gzip"})
    assert refused(loopback_guard(server), server.url("/gzip.json")) == "encoding"


# -- caps, backoff and the negative cache --------------------------------------------------


def test_a_failed_url_is_answered_from_the_negative_cache(server: LoopbackServer) -> None:
    clock = FrozenClock()
    fetcher = loopback_guard(server, clock, negative_ttl=60, backoff_base=1, backoff_max=1)
    url = server.url("/flaky.json")
    assert refused(fetcher, url) == "status"
    server.json("/flaky.json", {})
    before = len(server.seen)
    clock.advance(5)
    assert refused(fetcher, url) == "status"  # cached failure, no request
    assert len(server.seen) == before
    clock.advance(60)
    assert fetcher.fetch(url).body == b"{}"


def test_a_failing_host_backs_off(server: LoopbackServer) -> None:
    clock = FrozenClock()
    fetcher = loopback_guard(server, clock, backoff_base=30, backoff_max=300, read_timeout=0.2)
    stop = threading.Event()
    server.routes["/hang.json"] = lambda handler: stop.wait(2) and None
    try:
        assert refused(fetcher, server.url("/hang.json")) == "timeout"
    finally:
        stop.set()
    server.json("/fine.json", {})
    assert refused(fetcher, server.url("/fine.json")) == "backoff"
    clock.advance(31)
    assert fetcher.fetch(server.url("/fine.json")).body == b"{}"


def test_missing_documents_do_not_back_the_host_off(server: LoopbackServer) -> None:
    """Asking for documents that do not exist must not lock a real client's host out."""
    fetcher = loopback_guard(server)
    for i in range(5):
        assert refused(fetcher, server.url(f"/missing-{i}.json")) == "status"
    assert fetcher.fetch(server.json("/present.json", {})).body == b"{}"


def test_the_in_flight_cap_refuses_without_waiting(server: LoopbackServer) -> None:
    fetcher = loopback_guard(server, max_in_flight=1)
    started, release = threading.Event(), threading.Event()

    def held(handler: BaseHTTPRequestHandler) -> None:
        started.set()
        release.wait(5)
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    server.routes["/held.json"] = held
    results: list[bytes] = []
    first = threading.Thread(
        target=lambda: results.append(fetcher.fetch(server.url("/held.json")).body)
    )
    first.start()
    try:
        assert started.wait(5)
        assert refused(fetcher, server.json("/other.json", {})) == "busy"
    finally:
        release.set()
        first.join(5)
    assert results == [b"{}"]


# -- a metadata document through the real guard --------------------------------------------


def test_a_client_metadata_document_resolves_through_the_guard(server: LoopbackServer) -> None:
    url = server.url("/oauth/client.json")
    server.json(
        "/oauth/client.json",
        {
            "client_id": url,
            "client_name": "Loopback CLI",
            "redirect_uris": ["http://127.0.0.1/callback"],
        },
        {"Cache-Control": "max-age=600"},
    )
    clock = FrozenClock()
    documents = MetadataDocumentResolver(
        loopback_guard(server, clock), MetadataDocumentPolicy(), clock=clock
    )
    client = documents.resolve(url)
    assert client.client_id == url
    assert client.native
    before = len(server.seen)
    documents.resolve(url)
    assert len(server.seen) == before  # cached for max-age


def test_a_redirecting_metadata_document_is_invalid_client(server: LoopbackServer) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(301)
        handler.send_header("Location", "/oauth/client.json")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server.routes["/moved.json"] = redirect
    clock = FrozenClock()
    documents = MetadataDocumentResolver(
        loopback_guard(server, clock), MetadataDocumentPolicy(), clock=clock
    )
    with pytest.raises(InvalidClient) as caught:
        documents.resolve(server.url("/moved.json"))
    assert caught.value.reason == "cimd_redirect"


def test_a_slow_resolver_hits_the_deadline() -> None:
    """``getaddrinfo`` has no timeout of its own: the guard stops waiting at its deadline."""
    release = threading.Event()

    def slow(host: str, port: int) -> Sequence[str]:
        release.wait(2)
        return ["93.184.215.14"]

    fetcher = GuardedFetcher(FetchLimits(deadline=0.2), clock=FrozenClock(), resolver=slow)
    try:
        assert refused(fetcher, "https://slow-dns.example/client.json") == "timeout"
    finally:
        release.set()
