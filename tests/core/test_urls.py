"""The ``htu`` comparison of RFC 9449 §4.3 with the RFC 3986 §6.2.2-6.2.3 normalisation of
DESIGN.md rule 1 (no dot-segment removal, no decoding of ``%2F``)."""

from __future__ import annotations

import pytest

from pyramid_attesto.core.urls import InvalidURL, htu_matches, normalize_htu

# (claimed htu, server URL, same?) — each case one rule.
MATRIX = [
    # RFC 3986 §6.2.2.1: scheme and host are case-insensitive.
    ("HTTPS://as.example.com/token", "https://as.example.com/token", True),
    ("https://AS.Example.COM/token", "https://as.example.com/token", True),
    # ... but the path is not.
    ("https://as.example.com/Token", "https://as.example.com/token", False),
    # RFC 3986 §6.2.3: default ports.
    ("https://as.example.com:443/token", "https://as.example.com/token", True),
    ("http://as.example.com:80/token", "http://as.example.com/token", True),
    ("https://as.example.com:/token", "https://as.example.com/token", True),
    # A non-default port is significant, and 80 is not https's default.
    ("https://as.example.com:8443/token", "https://as.example.com/token", False),
    ("https://as.example.com:8443/token", "https://as.example.com:8443/token", True),
    ("https://as.example.com:80/token", "https://as.example.com/token", False),
    # The scheme is significant.
    ("http://as.example.com/token", "https://as.example.com/token", False),
    # Trailing slashes are significant.
    ("https://as.example.com/token/", "https://as.example.com/token", False),
    # RFC 3986 §6.2.3: an empty path is "/".
    ("https://as.example.com", "https://as.example.com/", True),
    ("https://as.example.com:443", "https://as.example.com/", True),
    # RFC 3986 §6.2.2.1: percent-encoding hex digits are case-insensitive.
    ("https://as.example.com/a%3ab", "https://as.example.com/a%3Ab", True),
    # RFC 3986 §6.2.2.2: percent-encoded unreserved characters are decoded.
    ("https://as.example.com/%7Euser", "https://as.example.com/~user", True),
    ("https://as.example.com/%7euser", "https://as.example.com/~user", True),
    ("https://as.example.com/%41%2D%5F%2E", "https://as.example.com/A-_.", True),
    # ... but %2F is not a "/" (it is reserved), in either case.
    ("https://as.example.com/a%2Fb", "https://as.example.com/a/b", False),
    ("https://as.example.com/a%2fb", "https://as.example.com/a%2Fb", True),
    # RFC 9449 §4.3: query and fragment are ignored, on both sides.
    ("https://as.example.com/token?x=1", "https://as.example.com/token", True),
    ("https://as.example.com/token#frag", "https://as.example.com/token", True),
    ("https://as.example.com/token", "https://as.example.com/token?page=2#top", True),
    ("https://as.example.com/?x", "https://as.example.com", True),
    # Dot-segments are not removed (RFC 3986 §6.2.2.3 is left out on purpose).
    ("https://as.example.com/a/../token", "https://as.example.com/token", False),
    ("https://as.example.com/./token", "https://as.example.com/token", False),
    # ... and decoding %2E gives the same dot-segment, compared as text.
    ("https://as.example.com/a/%2E%2E/token", "https://as.example.com/a/../token", True),
    # IPv6 literals: case of the hex digits.
    ("https://[2001:DB8::1]:443/token", "https://[2001:db8::1]/token", True),
    ("https://[::1]:8443/x", "https://[::1]:8443/x", True),
    # IDN hosts compare as punycode, as they are; the Unicode form is not a URI.
    ("https://xn--bcher-kva.example/token", "https://XN--BCHER-KVA.example/token", True),
    ("https://bücher.example/token", "https://xn--bcher-kva.example/token", False),
    # Sub-delims in the path are not decoded nor encoded.
    ("https://as.example.com/a;b=c", "https://as.example.com/a%3Bb=c", False),
]


@pytest.mark.parametrize(("claimed", "server", "same"), MATRIX)
def test_htu_matrix_rfc9449_4_3_rfc3986_6_2(claimed: str, server: str, same: bool) -> None:
    assert htu_matches(claimed, server) is same
    assert htu_matches(server, claimed) is same


def test_the_matrix_has_at_least_twenty_cases() -> None:
    assert len(MATRIX) >= 20


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        (
            "HTTPS://Server.Example.COM:443/%7euser/a%2fb?q=1#top",
            "https://server.example.com/~user/a%2Fb",
        ),
        ("http://h.test:80", "http://h.test/"),
        ("https://h.test:08443/x", "https://h.test:8443/x"),
        ("https://h.test/%e2%82%ac", "https://h.test/%E2%82%AC"),
        ("https://%41%62c.test/", "https://abc.test/"),
        ("https://a%2Eb%2d.test/", "https://a.b-.test/"),
        ("https://h%C3%A9.test/", "https://h%C3%A9.test/"),
        ("https://127.0.0.1:443/t", "https://127.0.0.1/t"),
        ("https://[FE80::A]/", "https://[fe80::a]/"),
    ],
)
def test_normal_forms_rfc3986_6_2_2(url: str, normal: str) -> None:
    assert normalize_htu(url) == normal


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user@as.example.com/token", "userinfo"),
        ("https://user:pw@as.example.com/token", "userinfo"),
        ("https://a@b@as.example.com/token", "userinfo"),
        ("/token", "not_absolute"),
        ("//as.example.com/token", "not_absolute"),
        ("as.example.com/token", "not_absolute"),
        ("", "not_absolute"),
        ("ftp://as.example.com/token", "scheme"),
        ("wss://as.example.com/token", "scheme"),
        ("urn:ietf:rfc:9449", "scheme"),
        ("https:as.example.com/token", "scheme"),
        ("https:///token", "host"),
        ("https://:443/token", "host"),
        ("https://as example.com/token", "host"),
        ("https://as.example.com\\token", "host"),
        ("https://[::1/token", "host"),
        ("https://[v1.x]/token", "host"),
        ("https://[fe80::1%25eth0]/token", "host"),
        ("https://[::1]x/token", "host"),
        ("https://as.example.com:99999/token", "port"),
        ("https://as.example.com:0/token", "port"),
        ("https://as.example.com:44x/token", "port"),
        ("https://as.example.com:443:443/token", "port"),
        ("https://as.example.com/to ken", "path"),
        ("https://as.example.com/to\tken", "path"),
        ("https://as.example.com/%zz", "path"),
        ("https://as.example.com/%4", "path"),
        ("https://as.example.com/a\\b", "path"),
        ("https://as.example.com/€", "path"),
        ("https://as.example.com/token\n", "path"),
    ],
)
def test_unusable_urls_are_refused_rfc9449_4_3(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        normalize_htu(url)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    assert not htu_matches(url, url)
    assert not htu_matches(url, "https://as.example.com/token")


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidURL) as caught:
        normalize_htu(42)  # type: ignore[arg-type]
    assert caught.value.reason == "type"
