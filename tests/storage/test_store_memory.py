"""What only the memory stores promise: bounds that fail closed (DESIGN.md D18)."""

from __future__ import annotations

import pytest

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import TemporarilyUnavailable
from pyramid_attesto.core.stores import (
    AuthorizationCode,
    PushedRequest,
    RefreshGrant,
    RefreshToken,
)
from pyramid_attesto.storage import MemoryStorage

NOW = 1_700_000_000


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def storage(clock: FrozenClock) -> MemoryStorage:
    return MemoryStorage(clock, max_entries=3)


def test_full_replay_store_reports_a_replay_d18_rfc9449_11_1(storage: MemoryStorage) -> None:
    """D18: a full replay store refuses new keys; it never evicts a live one."""
    for i in range(3):
        assert storage.replay.check_and_record(f"k{i}", NOW + 60)
    assert not storage.replay.check_and_record("k3", NOW + 60)
    assert not storage.replay.check_and_record("k0", NOW + 60)  # still remembered


def test_expired_replay_keys_make_room(storage: MemoryStorage, clock: FrozenClock) -> None:
    for i in range(3):
        storage.replay.check_and_record(f"k{i}", NOW + 60)
    clock.advance(61)
    assert storage.replay.check_and_record("k3", NOW + 200)


def test_full_code_store_refuses_with_temporarily_unavailable_d18(
    storage: MemoryStorage,
) -> None:
    entry = AuthorizationCode("c", "s", "https://a/cb", ("x",), NOW + 60)
    for i in range(3):
        storage.codes.put(f"code-{i}", entry)
    with pytest.raises(TemporarilyUnavailable) as caught:
        storage.codes.put("code-3", entry)
    assert caught.value.reason == "code_store_full"
    assert caught.value.status == 503


def test_full_request_and_refresh_stores_refuse_d18(storage: MemoryStorage) -> None:
    grant = RefreshGrant("c", "s", ("x",))
    for i in range(3):
        storage.requests.put(f"ref-{i}", PushedRequest("c", {}, NOW + 60))
        storage.refresh_tokens.put(
            f"rt-{i}", RefreshToken(f"f{i}", 0, grant, NOW, NOW + 9, NOW + 9)
        )
    with pytest.raises(TemporarilyUnavailable):
        storage.requests.put("ref-3", PushedRequest("c", {}, NOW + 60))
    with pytest.raises(TemporarilyUnavailable):
        storage.refresh_tokens.put("rt-3", RefreshToken("f3", 0, grant, NOW, NOW + 9, NOW + 9))


def test_full_denylist_refuses_rather_than_forgetting_a_revocation_d18(
    storage: MemoryStorage,
) -> None:
    for i in range(3):
        storage.revoked_access_tokens.add(f"jti-{i}", NOW + 60)
    with pytest.raises(TemporarilyUnavailable):
        storage.revoked_access_tokens.add("jti-3", NOW + 60)
    assert storage.revoked_access_tokens.is_revoked("jti-0")


def test_full_nonce_store_evicts_the_nonce_closest_to_expiry(storage: MemoryStorage) -> None:
    short = storage.nonces.issue(10)
    others = [storage.nonces.issue(60) for _ in range(2)]
    newest = storage.nonces.issue(60)
    assert not storage.nonces.check(short)
    assert all(storage.nonces.check(n) for n in [*others, newest])


def test_retained_codes_count_against_the_bound_until_swept(
    storage: MemoryStorage, clock: FrozenClock
) -> None:
    entry = AuthorizationCode("c", "s", "https://a/cb", ("x",), NOW + 60)
    for i in range(3):
        storage.codes.put(f"code-{i}", entry)
    clock.advance(60 + 86_400 + 1)
    assert storage.sweep()["codes"] == 3
    storage.codes.put("code-3", entry)


def test_max_entries_must_be_positive(clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStorage(clock, max_entries=0)


def test_take_and_put_cycles_keep_memory_bounded(clock: FrozenClock) -> None:
    storage = MemoryStorage(clock, max_entries=2)
    for i in range(1000):
        storage.requests.put(f"ref-{i}", PushedRequest("c", {}, NOW + 60))
        assert storage.requests.take(f"ref-{i}", "c") is not None
    heap = storage.requests._requests._heap
    assert len(heap) <= 2 * 2 + 64 + 1
