"""Memory stores: one process, thread-safe, bounded.

For tests, scripts and single-process development servers. Nothing here is shared between
processes or machines, and nothing joins a transaction: a write stays written even when the
request that made it aborts. Use the SQLAlchemy stores for anything else.

Every store is bounded by ``max_entries`` and drops expired entries as it goes (and on
:meth:`MemoryStorage.sweep`). When a store is full of live entries it fails closed
(DESIGN.md D18): the replay store reports a replay, the denylist and the code, refresh and
request stores refuse with :class:`~pyramid_attesto.core.errors.TemporarilyUnavailable`; only
the nonce store evicts (a lost nonce costs the client one ``use_dpop_nonce`` round trip).
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from pyramid_attesto.core.clock import Clock, SystemClock
from pyramid_attesto.core.errors import TemporarilyUnavailable
from pyramid_attesto.core.secret import generate_secret, hash_secret
from pyramid_attesto.core.stores import (
    AuthorizationCode,
    CodeRefused,
    CodeReused,
    CodeTaken,
    CodeTakeResult,
    IssuedAccessToken,
    PushedRequest,
    RefreshGrant,
    RefreshToken,
    ReuseDetected,
    Rotated,
    RotationRefused,
    RotationResult,
    RotationRetried,
    Stores,
)

from .cipher import SuccessorCipher

__all__ = [
    "DEFAULT_CODE_RETENTION",
    "DEFAULT_MAX_ENTRIES",
    "MemoryCodeStore",
    "MemoryNonceStore",
    "MemoryPushedRequestStore",
    "MemoryRefreshTokenStore",
    "MemoryReplayStore",
    "MemoryRevokedAccessTokenStore",
    "MemoryStorage",
]

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_CODE_RETENTION = 86_400
"""Seconds a code is kept after it expired, so its reuse is still recognised."""

V = TypeVar("V")


class _Full(Exception):
    pass


class _ExpiringMap(Generic[V]):
    """A dict whose entries leave after their deadline (``deadline < now``), with a cap.

    A min-heap of deadlines makes dropping expired entries O(log n) per entry. Not locked:
    the owning store holds its lock.
    """

    __slots__ = ("_cap", "_heap", "_items")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("max_entries must be at least 1")
        self._cap = cap
        self._items: dict[str, tuple[int, V]] = {}
        self._heap: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[1]

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def set(self, key: str, value: V, deadline: int, now: int, *, evict: bool = False) -> None:
        """Insert or replace. When full of live entries: raise :class:`_Full`, or drop the
        entry with the nearest deadline if ``evict``."""
        self.purge(now)
        if key not in self._items and len(self._items) >= self._cap:
            if not evict:
                raise _Full
            self._evict_one()
        self._items[key] = (deadline, value)
        heapq.heappush(self._heap, (deadline, key))
        if len(self._heap) > 2 * self._cap + 64:
            self._heap = [(d, k) for k, (d, _) in self._items.items()]
            heapq.heapify(self._heap)

    def update(self, key: str, value: V) -> None:
        """Replace the value of a present key, keeping its deadline."""
        deadline, _ = self._items[key]
        self._items[key] = (deadline, value)

    def pop(self, key: str) -> V | None:
        item = self._items.pop(key, None)
        return None if item is None else item[1]

    def purge(self, now: int, limit: int | None = None) -> int:
        """Drop entries whose deadline has passed; return how many."""
        heap, items, dropped = self._heap, self._items, 0
        while heap and heap[0][0] < now and (limit is None or dropped < limit):
            deadline, key = heapq.heappop(heap)
            item = items.get(key)
            if item is not None and item[0] == deadline:
                del items[key]
                dropped += 1
        return dropped

    def _evict_one(self) -> None:
        while self._heap:
            deadline, key = heapq.heappop(self._heap)
            item = self._items.get(key)
            if item is not None and item[0] == deadline:
                del self._items[key]
                return

    def values(self) -> list[V]:
        return [value for _, value in self._items.values()]


def _full(store: str) -> TemporarilyUnavailable:
    return TemporarilyUnavailable("the server is busy, try again later", reason=f"{store}_full")


# Replay, nonces, denylist ----------


class MemoryReplayStore:
    """:class:`~pyramid_attesto.core.stores.ReplayStore` in memory. Full: reports a replay."""

    def __init__(self, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: _ExpiringMap[bool] = _ExpiringMap(max_entries)

    def check_and_record(self, key: str, expires_at: int) -> bool:
        now = int(self._clock.now())
        with self._lock:
            if key in self._keys:
                return False
            try:
                self._keys.set(key, True, expires_at, now)
            except _Full:
                return False
            return True

    def sweep(self) -> int:
        with self._lock:
            return self._keys.purge(int(self._clock.now()))


class MemoryNonceStore:
    """:class:`~pyramid_attesto.core.stores.DPoPNonceStore` in memory. Full: evicts the
    nonce closest to expiry."""

    def __init__(self, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._nonces: _ExpiringMap[int] = _ExpiringMap(max_entries)

    def issue(self, ttl: int) -> str:
        now = int(self._clock.now())
        nonce = generate_secret()
        with self._lock:
            self._nonces.set(nonce, now + ttl, now + ttl, now, evict=True)
        return nonce

    def check(self, nonce: str) -> bool:
        now = int(self._clock.now())
        with self._lock:
            expires_at = self._nonces.get(nonce)
        return expires_at is not None and now < expires_at

    def sweep(self) -> int:
        with self._lock:
            return self._nonces.purge(int(self._clock.now()))


class MemoryRevokedAccessTokenStore:
    """:class:`~pyramid_attesto.core.stores.RevokedAccessTokenStore` in memory. Full of
    unexpired entries: refuses (a revocation is never dropped silently)."""

    def __init__(self, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._jtis: _ExpiringMap[int] = _ExpiringMap(max_entries)

    def add(self, jti: str, expires_at: int) -> None:
        now = int(self._clock.now())
        with self._lock:
            if jti in self._jtis:
                return
            try:
                self._jtis.set(jti, expires_at, expires_at, now)
            except _Full:
                raise _full("denylist") from None

    def is_revoked(self, jti: str) -> bool:
        with self._lock:
            return jti in self._jtis

    def sweep(self) -> int:
        with self._lock:
            return self._jtis.purge(int(self._clock.now()))


# Authorization codes ----------


@dataclass(frozen=True, slots=True)
class _CodeRow:
    entry: AuthorizationCode
    consumed_at: int | None = None
    finalized: bool = False
    family_id: str | None = None
    access_tokens: tuple[IssuedAccessToken, ...] = ()


class MemoryCodeStore:
    """:class:`~pyramid_attesto.core.stores.AuthorizationCodeStore` in memory.

    A code is kept ``code_retention`` seconds past its expiry so reuse is still detected.
    """

    def __init__(
        self,
        clock: Clock,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        code_retention: int = DEFAULT_CODE_RETENTION,
    ) -> None:
        self._clock = clock
        self._retention = code_retention
        self._lock = threading.Lock()
        self._rows: _ExpiringMap[_CodeRow] = _ExpiringMap(max_entries)

    def put(self, code: str, entry: AuthorizationCode) -> None:
        key = hash_secret(code)
        now = int(self._clock.now())
        with self._lock:
            if key in self._rows:
                raise ValueError("an authorization code with this value already exists")
            try:
                self._rows.set(key, _CodeRow(entry), entry.expires_at + self._retention, now)
            except _Full:
                raise _full("code_store") from None

    def take(self, code: str) -> CodeTakeResult:
        key = hash_secret(code)
        now = int(self._clock.now())
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return CodeRefused("unknown")
            if row.consumed_at is not None:
                if row.finalized:
                    return CodeReused(
                        row.entry.client_id, row.entry.subject, row.family_id, row.access_tokens
                    )
                return CodeRefused("consumed")
            if now >= row.entry.expires_at:
                return CodeRefused("expired")
            self._rows.update(key, replace(row, consumed_at=now))
            return CodeTaken(row.entry)

    def finalize(
        self,
        code: str,
        *,
        family_id: str | None,
        access_tokens: tuple[IssuedAccessToken, ...],
    ) -> bool:
        key = hash_secret(code)
        with self._lock:
            row = self._rows.get(key)
            if row is None or row.consumed_at is None or row.finalized:
                return False
            self._rows.update(
                key,
                replace(row, finalized=True, family_id=family_id, access_tokens=access_tokens),
            )
            return True

    def sweep(self) -> int:
        with self._lock:
            return self._rows.purge(int(self._clock.now()))


# Refresh tokens ----------


@dataclass(frozen=True, slots=True)
class _RefreshRow:
    token: RefreshToken
    retry_until: int | None = None
    successor_hash: str | None = None
    successor: bytes | None = None


class MemoryRefreshTokenStore:
    """:class:`~pyramid_attesto.core.stores.RefreshTokenStore` in memory.

    One lock serializes every operation, which is the family serialization the contract
    asks for. Revocation tombstones are kept for the life of the process.
    """

    def __init__(
        self,
        clock: Clock,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        successor_secret: str | bytes | None = None,
    ) -> None:
        self._clock = clock
        self._cipher = SuccessorCipher(successor_secret) if successor_secret else None
        self._lock = threading.Lock()
        self._rows: _ExpiringMap[_RefreshRow] = _ExpiringMap(max_entries)
        self._generations: set[tuple[str, int]] = set()
        self._tombstones: dict[str, int] = {}

    def _live(self, row: _RefreshRow | None, now: int) -> bool:
        return (
            row is not None
            and now < row.token.expires_at
            and row.token.family_id not in self._tombstones
        )

    def _insert(self, key: str, token: RefreshToken, now: int) -> bool:
        slot = (token.family_id, token.generation)
        if key in self._rows or slot in self._generations:
            return False
        try:
            self._rows.set(key, _RefreshRow(token), token.expires_at, now)
        except _Full:
            raise _full("refresh_store") from None
        self._generations.add(slot)
        return True

    def put(self, token: str, entry: RefreshToken) -> bool:
        if entry.generation != 0 or entry.consumed_at is not None:
            raise ValueError("put stores the first, unconsumed token of a family")
        now = int(self._clock.now())
        with self._lock:
            if entry.family_id in self._tombstones:
                return False
            return self._insert(hash_secret(token), entry, now)

    def get(self, token: str) -> RefreshToken | None:
        now = int(self._clock.now())
        with self._lock:
            row = self._rows.get(hash_secret(token))
            return row.token if row is not None and self._live(row, now) else None

    def rotate(
        self,
        parent: str,
        child: str,
        *,
        expires_at: int,
        grant: RefreshGrant | None = None,
        grace: int = 0,
    ) -> RotationResult:
        parent_hash, child_hash = hash_secret(parent), hash_secret(child)
        now = int(self._clock.now())
        with self._lock:
            row = self._rows.get(parent_hash)
            if row is None:
                return RotationRefused("unknown")
            family = row.token.family_id
            if family in self._tombstones:
                return RotationRefused("revoked")
            if row.token.consumed_at is not None:
                return self._retry(parent_hash, row, now)
            if now >= row.token.expires_at:
                return RotationRefused("expired")
            child_token = RefreshToken(
                family_id=family,
                generation=row.token.generation + 1,
                grant=grant if grant is not None else row.token.grant,
                issued_at=now,
                expires_at=min(expires_at, row.token.family_expires_at),
                family_expires_at=row.token.family_expires_at,
            )
            if not self._insert(child_hash, child_token, now):
                self._tombstones.setdefault(family, now)
                return ReuseDetected(family)
            consumed = replace(row.token, consumed_at=now)
            if grace > 0 and self._cipher is not None:
                sealed = self._cipher.seal(child, parent_hash=parent_hash, child_hash=child_hash)
                self._rows.update(
                    parent_hash, _RefreshRow(consumed, now + grace, child_hash, sealed)
                )
            else:
                self._rows.update(parent_hash, _RefreshRow(consumed, None, child_hash, None))
            return Rotated(consumed, child_token)

    def _retry(self, parent_hash: str, row: _RefreshRow, now: int) -> RotationResult:
        family = row.token.family_id
        succ = self._rows.get(row.successor_hash) if row.successor_hash else None
        if (
            row.retry_until is not None
            and now <= row.retry_until
            and row.successor is not None
            and row.successor_hash is not None
            and succ is not None
            and succ.token.consumed_at is None
            and now < succ.token.expires_at
        ):
            if self._cipher is None:
                return RotationRefused("retry_unavailable")
            token = self._cipher.open(
                row.successor, parent_hash=parent_hash, child_hash=row.successor_hash
            )
            if token is None:
                return RotationRefused("retry_unavailable")
            return RotationRetried(token, succ.token)
        self._tombstones.setdefault(family, now)
        return ReuseDetected(family)

    def revoke_family(self, family_id: str) -> None:
        with self._lock:
            self._tombstones.setdefault(family_id, int(self._clock.now()))

    def revoke_token(self, token: str) -> str | None:
        with self._lock:
            row = self._rows.get(hash_secret(token))
            if row is None:
                return None
            self._tombstones.setdefault(row.token.family_id, int(self._clock.now()))
            return row.token.family_id

    def revoke_for(self, subject: str, client_id: str) -> int:
        now = int(self._clock.now())
        with self._lock:
            families = {
                row.token.family_id
                for row in self._rows.values()
                if row.token.grant.subject == subject and row.token.grant.client_id == client_id
            }
            fresh = families.difference(self._tombstones)
            for family in fresh:
                self._tombstones[family] = now
            return len(fresh)

    def sweep(self) -> int:
        now = int(self._clock.now())
        with self._lock:
            dropped = self._rows.purge(now)
            if dropped:
                self._generations = {
                    (row.token.family_id, row.token.generation) for row in self._rows.values()
                }
            return dropped


# Pushed / pending authorization requests ----------


class MemoryPushedRequestStore:
    """:class:`~pyramid_attesto.core.stores.PushedRequestStore` in memory."""

    def __init__(self, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: _ExpiringMap[PushedRequest] = _ExpiringMap(max_entries)

    def put(self, reference: str, entry: PushedRequest) -> None:
        key = hash_secret(reference)
        now = int(self._clock.now())
        with self._lock:
            if key in self._requests:
                raise ValueError("a request with this reference already exists")
            try:
                self._requests.set(key, entry, entry.expires_at, now)
            except _Full:
                raise _full("request_store") from None

    def fetch(self, reference: str, client_id: str) -> PushedRequest | None:
        now = int(self._clock.now())
        with self._lock:
            entry = self._requests.get(hash_secret(reference))
        if entry is None or entry.client_id != client_id or now >= entry.expires_at:
            return None
        return entry

    def take(self, reference: str, client_id: str) -> PushedRequest | None:
        key = hash_secret(reference)
        now = int(self._clock.now())
        with self._lock:
            entry = self._requests.get(key)
            if entry is None or entry.client_id != client_id or now >= entry.expires_at:
                return None
            self._requests.pop(key)
            return entry

    def sweep(self) -> int:
        with self._lock:
            return self._requests.purge(int(self._clock.now()))


# The bundle ----------


class MemoryStorage:
    """The six memory stores behind one object.

    >>> storage = MemoryStorage()
    >>> storage.stores.replay.check_and_record("k", expires_at=2**40)
    True
    >>> storage.stores.replay.check_and_record("k", expires_at=2**40)
    False

    ``successor_secret`` enables the refresh grace window (D12); ``max_entries`` bounds each
    store; ``code_retention`` keeps expired codes that long so their reuse is recognised.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        successor_secret: str | bytes | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        code_retention: int = DEFAULT_CODE_RETENTION,
    ) -> None:
        clock = clock if clock is not None else SystemClock()
        self.codes = MemoryCodeStore(clock, max_entries, code_retention)
        self.refresh_tokens = MemoryRefreshTokenStore(clock, max_entries, successor_secret)
        self.nonces = MemoryNonceStore(clock, max_entries)
        self.replay = MemoryReplayStore(clock, max_entries)
        self.requests = MemoryPushedRequestStore(clock, max_entries)
        self.revoked_access_tokens = MemoryRevokedAccessTokenStore(clock, max_entries)
        self.stores = Stores(
            codes=self.codes,
            refresh_tokens=self.refresh_tokens,
            nonces=self.nonces,
            replay=self.replay,
            requests=self.requests,
            revoked_access_tokens=self.revoked_access_tokens,
        )

    def sweep(self) -> dict[str, int]:
        """Drop every expired entry now; the number dropped per store."""
        return {
            "codes": self.codes.sweep(),
            "refresh_tokens": self.refresh_tokens.sweep(),
            "nonces": self.nonces.sweep(),
            "replay": self.replay.sweep(),
            "requests": self.requests.sweep(),
            "revoked_access_tokens": self.revoked_access_tokens.sweep(),
        }
