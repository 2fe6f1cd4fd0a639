"""DPoP server nonces (RFC 9449 §8, §9): stateless HMAC nonces for clusters, and the
store-backed mode (DESIGN.md rule 7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct

import pytest

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.dpop import HMACNonces, NonceSource, StoreNonces
from pyramid_attesto.core.errors import ConfigurationError

SECRET = b"a-shared-secret-of-at-least-32-bytes!"
OTHER = b"another-secret-of-at-least-32-bytes!!"
# RFC 9449 §8.1: nonce = 1*NQCHAR.
NQCHARS = re.compile(r"\A[\x21\x23-\x5B\x5D-\x7E]+\Z")


def test_both_modes_are_nonce_sources() -> None:
    clock = FrozenClock()
    assert isinstance(HMACNonces([SECRET], clock=clock), NonceSource)
    assert isinstance(StoreNonces(FakeNonceStore(clock), clock=clock), NonceSource)


def test_an_hmac_nonce_is_nqchar_and_checks_rfc9449_8_1() -> None:
    nonces = HMACNonces([SECRET], clock=FrozenClock())
    nonce = nonces.issue()
    assert NQCHARS.match(nonce)
    assert nonces.check(nonce)


def test_the_hmac_nonce_format_is_window_and_truncated_mac() -> None:
    """Recomputed independently: base64url(window || HMAC-SHA256(secret, label || window)[:16])."""
    clock = FrozenClock(1_000_000)
    nonce = HMACNonces([SECRET], clock=clock, window_seconds=300).issue()
    window = struct.pack(">Q", 1_000_000 // 300)
    mac = hmac.new(SECRET, b"pyramid_attesto dpop nonce v1\x00" + window, hashlib.sha256)
    expected = base64.urlsafe_b64encode(window + mac.digest()[:16]).rstrip(b"=").decode()
    assert nonce == expected


def test_every_node_with_the_secret_accepts_every_nodes_nonces_rfc9449_8() -> None:
    clock = FrozenClock()
    node_a = HMACNonces([SECRET], clock=clock)
    node_b = HMACNonces([SECRET.decode()], clock=clock)  # a str secret is its UTF-8 bytes
    assert node_a.issue() == node_b.issue()
    assert node_b.check(node_a.issue())
    assert not HMACNonces([OTHER], clock=clock).check(node_a.issue())


def test_a_nonce_lives_for_its_window_and_the_next_rfc9449_8() -> None:
    clock = FrozenClock(600)  # the start of a window
    nonces = HMACNonces([SECRET], clock=clock, window_seconds=300)
    nonce = nonces.issue()
    clock.advance(299)
    assert nonces.issue() == nonce
    clock.advance(1)
    assert nonces.issue() != nonce
    assert nonces.check(nonce)  # previous window
    clock.advance(299)
    assert nonces.check(nonce)
    clock.advance(1)
    assert not nonces.check(nonce)  # two windows on: stale


def test_a_nonce_from_the_future_is_refused_rfc9449_8() -> None:
    clock = FrozenClock(10_000)
    future = HMACNonces([SECRET], clock=FrozenClock(10_000 + 300)).issue()
    assert not HMACNonces([SECRET], clock=clock).check(future)


def test_secret_rotation_rfc9449_8() -> None:
    clock = FrozenClock()
    old = HMACNonces([SECRET], clock=clock)
    rotated = HMACNonces([OTHER, SECRET], clock=clock)  # the new secret signs, the old verifies
    assert rotated.check(old.issue())
    assert rotated.check(rotated.issue())
    assert rotated.issue() != old.issue()
    assert not old.check(rotated.issue())  # nodes not yet rotated refuse the new nonces
    assert not HMACNonces([OTHER], clock=clock).check(old.issue())  # once the old one is dropped


@pytest.mark.parametrize(
    "nonce",
    ["", "x", "not base64url!" * 3, "A" * 32, "A" * 31 + "=", "é" * 32],
)
def test_garbage_nonces_are_refused_rfc9449_8(nonce: str) -> None:
    assert not HMACNonces([SECRET], clock=FrozenClock()).check(nonce)


def test_a_tampered_nonce_is_refused_rfc9449_8() -> None:
    nonces = HMACNonces([SECRET], clock=FrozenClock())
    raw = bytearray(base64.urlsafe_b64decode(nonces.issue() + "=="))
    raw[-1] ^= 1
    assert not nonces.check(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())
    raw[-1] ^= 1
    raw[7] ^= 1  # another window, the same MAC
    assert not nonces.check(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


@pytest.mark.parametrize(
    ("secrets", "window"),
    [([], 300), ([b"short"], 300), ([SECRET, b"short"], 300), ([SECRET], 0)],
)
def test_bad_hmac_nonce_settings_are_configuration_errors(
    secrets: list[bytes], window: int
) -> None:
    with pytest.raises(ConfigurationError):
        HMACNonces(secrets, clock=FrozenClock(), window_seconds=window)


def test_a_generated_secret_is_flagged_per_process_design_d19() -> None:
    clock = FrozenClock()
    generated = HMACNonces.generate(clock=clock)
    assert generated.ephemeral
    assert not HMACNonces([SECRET], clock=clock).ephemeral
    assert generated.check(generated.issue())
    assert not HMACNonces.generate(clock=clock).check(generated.issue())


class FakeNonceStore:
    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.issued: dict[str, float] = {}
        self.checked: list[str] = []

    def issue(self, ttl: int) -> str:
        nonce = f"nonce-{len(self.issued)}"
        self.issued[nonce] = self.clock.now() + ttl
        return nonce

    def check(self, nonce: str) -> bool:
        self.checked.append(nonce)
        return self.issued.get(nonce, 0) > self.clock.now()


def test_store_nonces_reuse_one_nonce_so_callers_cannot_grow_the_store_rule7() -> None:
    clock = FrozenClock()
    store = FakeNonceStore(clock)
    nonces = StoreNonces(store, clock=clock, ttl=300)
    first = nonces.issue()
    for _ in range(100):
        assert nonces.issue() == first
    clock.advance(149)
    assert nonces.issue() == first
    clock.advance(1)
    second = nonces.issue()
    assert second != first
    assert len(store.issued) == 2
    assert nonces.check(first)
    assert nonces.check(second)
    clock.advance(151)
    assert not nonces.check(first)


@pytest.mark.parametrize("nonce", ["", 'a"b', "a\\b", "a b", "é", "x" * 257])
def test_store_nonces_refuse_non_nqchar_without_asking_the_store_rfc9449_8_1(nonce: str) -> None:
    clock = FrozenClock()
    store = FakeNonceStore(clock)
    assert not StoreNonces(store, clock=clock).check(nonce)
    assert store.checked == []


@pytest.mark.parametrize(("ttl", "reuse"), [(1, None), (300, 300), (300, -1)])
def test_bad_store_nonce_settings_are_configuration_errors(ttl: int, reuse: int | None) -> None:
    clock = FrozenClock()
    with pytest.raises(ConfigurationError):
        StoreNonces(FakeNonceStore(clock), clock=clock, ttl=ttl, reuse_seconds=reuse)


def test_store_nonces_with_no_reuse_store_every_nonce() -> None:
    clock = FrozenClock()
    store = FakeNonceStore(clock)
    nonces = StoreNonces(store, clock=clock, ttl=60, reuse_seconds=0)
    assert nonces.issue() != nonces.issue()
