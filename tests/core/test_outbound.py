"""The pure parts of the outbound-fetch guard: URL checks, cache lifetimes (RFC 9111 §5.2.2),
the bounded caches and the per-host backoff (DESIGN.md D18)."""

from __future__ import annotations

import pytest

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.outbound import (
    FetchedDocument,
    FetchRefused,
    HostBackoff,
    RemoteClientKeys,
    RemoteKeySets,
    TTLCache,
    cache_lifetime,
    check_url,
)


def test_check_url_splits_host_port_and_target() -> None:
    target = check_url("https://App.Example:8443/oauth/client.json?v=1")
    assert (target.host, target.port, target.target) == (
        "app.example",
        8443,
        "/oauth/client.json?v=1",
    )
    assert target.address is None
    assert check_url("https://app.example").target == "/"
    assert check_url("https://app.example?x=1").target == "/?x=1"


def test_check_url_keeps_public_ip_literals_for_the_address_check() -> None:
    assert str(check_url("https://93.184.215.14/c.json").address) == "93.184.215.14"
    assert str(check_url("https://[2606:4700::1]/c.json").address) == "2606:4700::1"


def test_check_url_refuses_an_upper_case_scheme() -> None:
    with pytest.raises(FetchRefused) as caught:
        check_url("HTTPS://app.example/c.json")
    assert caught.value.reason == "malformed"


HEADERS = [
    ({}, 300),
    ({"cache-control": "max-age=3600"}, 3600),
    ({"cache-control": "public, max-age=10"}, 60),
    ({"cache-control": "max-age=999999999"}, 86400),
    ({"cache-control": "no-cache"}, 60),
    ({"cache-control": "max-age=0"}, 60),
    ({"cache-control": "no-store"}, 0),
    ({"cache-control": "max-age=3600, no-store"}, 0),
    ({"cache-control": "NO-STORE"}, 0),
    ({"cache-control": 'max-age="120"'}, 120),
    ({"cache-control": "max-age=-5"}, 300),
    ({"cache-control": "max-age=abc"}, 300),
]


@pytest.mark.parametrize(("headers", "expected"), HEADERS)
def test_cache_lifetime_rfc9111_5_2_2(headers: dict[str, str], expected: int) -> None:
    assert cache_lifetime(headers, floor=60, ceiling=86400, default=300) == expected


def test_cache_lifetime_needs_sane_bounds() -> None:
    with pytest.raises(ValueError, match="floor"):
        cache_lifetime({}, floor=100, ceiling=10, default=50)


def test_ttl_cache_expires_and_evicts_the_least_recently_used() -> None:
    clock = FrozenClock()
    cache: TTLCache[str, int] = TTLCache(2, clock)
    cache.put("a", 1, 10)
    cache.put("b", 2, 100)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3, 100)
    assert cache.get("b") is None
    assert cache.get("a") == 1
    assert cache.get("c") == 3
    clock.advance(10)
    assert cache.get("a") is None
    cache.put("d", 4, 0)
    assert cache.get("d") is None
    cache.discard("c")
    assert len(cache) == 0


def test_host_backoff_doubles_up_to_its_maximum_and_clears_on_success() -> None:
    clock = FrozenClock()
    backoff = HostBackoff(clock, base=10, maximum=25)
    backoff.check("a.example")
    backoff.failure("a.example")
    with pytest.raises(FetchRefused) as caught:
        backoff.check("a.example")
    assert caught.value.reason == "backoff"
    clock.advance(10)
    backoff.check("a.example")
    backoff.failure("a.example")  # second failure: 20 s
    clock.advance(19)
    with pytest.raises(FetchRefused):
        backoff.check("a.example")
    clock.advance(1)
    backoff.failure("a.example")  # third: capped at 25 s
    clock.advance(25)
    backoff.check("a.example")
    backoff.success("a.example")
    backoff.check("a.example")


def test_host_backoff_tracks_a_bounded_number_of_hosts() -> None:
    backoff = HostBackoff(FrozenClock(), size=2)
    for host in ("a", "b", "c"):
        backoff.failure(host)
    backoff.check("a")  # forgotten: the oldest entry went first
    with pytest.raises(FetchRefused):
        backoff.check("c")


def test_remote_client_keys_fetch_only_a_jwks_uri() -> None:
    fetched: list[str] = []

    class Fetcher:
        def fetch(self, url: str) -> FetchedDocument:
            fetched.append(url)
            return FetchedDocument(url=url, body=b'{"keys": []}', headers={})

    keys = RemoteClientKeys(RemoteKeySets(Fetcher(), FrozenClock()))
    inline = Client(client_id="a", token_endpoint_auth_method="private_key_jwt", jwks={"keys": []})
    remote = Client(
        client_id="b", token_endpoint_auth_method="private_key_jwt", jwks_uri="https://b.example/j"
    )
    assert keys(inline) == {"keys": []}
    assert keys(Client(client_id="c")) is None
    assert keys(remote) == {"keys": []}
    assert keys(remote) == {"keys": []}
    assert fetched == ["https://b.example/j"]
