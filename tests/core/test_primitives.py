from __future__ import annotations

import pytest

from pyramid_attesto.core.clock import Clock, FrozenClock, SystemClock
from pyramid_attesto.core.encoding import b64url_decode, b64url_encode, is_b64url
from pyramid_attesto.core.secret import (
    constant_time_equals,
    generate_secret,
    hash_secret,
    sha256_b64url,
)


def test_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock(100)
    assert isinstance(clock, Clock)
    assert clock.now() == 100.0
    clock.advance(5.5)
    assert clock.now() == 105.5
    clock.set(7)
    assert clock.now() == 7.0
    assert isinstance(SystemClock(), Clock)
    assert SystemClock().now() > 1_700_000_000


def test_b64url_round_trip_and_strictness_rfc4648_5() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", bytes(range(256))):
        assert b64url_decode(b64url_encode(data)) == data
    assert b64url_encode(b"\xfb\xff") == "-_8"
    for bad in ("-_8=", "a+b/", "a", "ab=c", "abc d", "-_9"):  # "-_9": non-canonical bits
        assert not is_b64url(bad) or bad == "-_9"
        with pytest.raises(ValueError, match="base64url"):
            b64url_decode(bad)


def test_generated_secrets_have_256_bits_and_differ() -> None:
    seen = {generate_secret() for _ in range(50)}
    assert len(seen) == 50
    assert all(len(s) == 43 and is_b64url(s) for s in seen)
    with pytest.raises(ValueError, match="at least 32"):
        generate_secret(16)


def test_hash_is_sha256_base64url() -> None:
    # RFC 7636 Appendix B: the same transform turns the verifier into the challenge.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert sha256_b64url(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert hash_secret(verifier) == sha256_b64url(verifier)


def test_constant_time_equals() -> None:
    assert constant_time_equals("abc", "abc")
    assert constant_time_equals(b"abc", "abc")
    assert not constant_time_equals("abc", "abd")
    assert not constant_time_equals("abc", "abcd")
    assert not constant_time_equals("", "a")
