"""Store Protocols: what the protocol core needs from persistence (DESIGN.md rules 2 and 4).

Implementations live in :mod:`pyramid_attesto.storage` (memory for one process, SQLAlchemy
for PostgreSQL and SQLite). Every single-use operation is atomic in the store itself, never
read-then-write in Python, and one contract test-suite runs against every implementation.

Secrets at rest (DESIGN.md rule 4)
    The stores take the *raw* authorization code, refresh token and PAR reference, and keep
    only :func:`~pyramid_attesto.core.secret.hash_secret` of it: the raw value never reaches
    the database, and a caller cannot forget to hash. Replay keys are hashes already
    (``sha256(jkt ":" jti)``); DPoP nonces and access-token ``jti`` values are not secrets.
    The one secret kept recoverable is the refresh successor a retry inside the grace window
    gets back: it is stored encrypted (AES-GCM, key derived from
    ``attesto.refresh_successor_secret``). Without that secret the grace window is 0 (D12).

Time
    Stores read "now" from the :class:`~pyramid_attesto.core.clock.Clock` they were built with
    and speak integer seconds since the epoch. An entry is live while ``now < expires_at``.

Transactions (DESIGN.md rule 3)
    A SQL store runs in the transaction of the request it is bound to; what it writes commits
    or aborts with that request. An operation whose effect must survive an error response
    (a consumed code, a revoked family, a replay record) relies on the view *returning* its
    error response so the transaction commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

__all__ = [
    "AuthorizationCode",
    "AuthorizationCodeStore",
    "CodeRefused",
    "CodeReused",
    "CodeTakeResult",
    "CodeTaken",
    "DPoPNonceStore",
    "IssuedAccessToken",
    "JSONValue",
    "PushedRequest",
    "PushedRequestStore",
    "RefreshGrant",
    "RefreshToken",
    "RefreshTokenStore",
    "ReplayStore",
    "ReuseDetected",
    "RevokedAccessTokenStore",
    "Rotated",
    "RotationRefused",
    "RotationResult",
    "RotationRetried",
    "Stores",
]

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
"""A value that survives a JSON round trip (what ``extra`` and PAR ``params`` may hold)."""


# Replay and nonces ----------


class ReplayStore(Protocol):
    """Single-use keys: DPoP proofs (``sha256(jkt ":" jti)``) and client assertions.

    A full bounded store refuses (reports a replay) rather than evicting live entries
    (DESIGN.md D18).
    """

    def check_and_record(self, key: str, expires_at: int) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds).

        Return ``True`` on first use and ``False`` when the key was already recorded (a
        replay, even if its record has expired but not yet been swept).
        """
        ...


class DPoPNonceStore(Protocol):
    """Server-issued DPoP nonces for the store-backed mode (RFC 9449 §8, §9)."""

    def issue(self, ttl: int) -> str:
        """Create, remember and return a fresh nonce valid for ``ttl`` seconds."""
        ...

    def check(self, nonce: str) -> bool:
        """Whether ``nonce`` was issued here and has not expired."""
        ...


# Revoked access tokens ----------


class RevokedAccessTokenStore(Protocol):
    """The access-token denylist: ``jti`` values revoked before their ``exp``.

    Fed by revocation (RFC 7009) and by authorization-code reuse (RFC 6749 §4.1.2); read by
    the resource server only where the denylist is switched on (D12).
    """

    def add(self, jti: str, expires_at: int) -> None:
        """Deny ``jti`` until ``expires_at`` (the token's ``exp``). Idempotent."""
        ...

    def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is on the denylist."""
        ...


# Authorization codes (RFC 6749 §4.1) ----------


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """What an authorization code stands for, as issued at the authorization endpoint.

    ``code_challenge`` is the RFC 7636 S256 challenge (the only method, DESIGN.md rule 6) or
    ``None`` for a confidential client exempted from PKCE. ``dpop_jkt`` is the RFC 9449 §10
    binding. ``extra`` carries what the grant needs beyond these fields (JSON values only).
    """

    client_id: str
    subject: str
    redirect_uri: str
    scope: tuple[str, ...]
    expires_at: int
    resource: tuple[str, ...] = ()
    code_challenge: str | None = None
    nonce: str | None = None
    dpop_jkt: str | None = None
    auth_time: int | None = None
    acr: str | None = None
    extra: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    """An access token issued from a code: what code reuse puts on the denylist."""

    jti: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class CodeTaken:
    """The code was live and is now consumed by this caller (and only this one)."""

    entry: AuthorizationCode


@dataclass(frozen=True, slots=True)
class CodeReused:
    """A replay of a code whose tokens were issued (RFC 6749 §4.1.2, RFC 9700 §4.5).

    The grant revokes ``family_id`` and denies ``access_tokens``.
    """

    client_id: str
    subject: str
    family_id: str | None
    access_tokens: tuple[IssuedAccessToken, ...]


@dataclass(frozen=True, slots=True)
class CodeRefused:
    """No code to redeem. ``consumed``: taken by a request that issued no tokens."""

    reason: Literal["unknown", "expired", "consumed"]


CodeTakeResult: TypeAlias = CodeTaken | CodeReused | CodeRefused


class AuthorizationCodeStore(Protocol):
    """Authorization codes: single use, with reuse detection.

    ``take`` consumes atomically and keeps the row, so a later replay is recognised. A code
    is reported as *reused* only once :meth:`finalize` recorded the tokens issued from it: a
    code consumed by a request that then failed (bad PKCE verifier, server error) is refused
    as ``consumed`` on a retry, not treated as an attack.
    """

    def put(self, code: str, entry: AuthorizationCode) -> None:
        """Store a fresh code (raw value; only its hash is kept)."""
        ...

    def take(self, code: str) -> CodeTakeResult:
        """Consume ``code`` if it is live and unconsumed; otherwise say why not."""
        ...

    def finalize(
        self,
        code: str,
        *,
        family_id: str | None,
        access_tokens: tuple[IssuedAccessToken, ...],
    ) -> bool:
        """Record the tokens issued from a consumed code, so its reuse can revoke them.

        Call it in the transaction that issues the tokens. Return ``False`` if the code was
        not consumed or is already finalized.
        """
        ...


# Refresh tokens (RFC 6749 §6, RFC 9700 §4.14) ----------


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh token grants. ``acr`` and ``auth_time`` are carried unchanged (RFC 9470).

    ``dpop_jkt`` / ``x5t_s256`` bind the token to a key (RFC 9449 §5, RFC 8705 §4).
    """

    client_id: str
    subject: str
    scope: tuple[str, ...]
    resource: tuple[str, ...] = ()
    dpop_jkt: str | None = None
    x5t_s256: str | None = None
    auth_time: int | None = None
    acr: str | None = None
    extra: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token of a family: generation 0 is issued with the family, each rotation
    adds one. ``family_expires_at`` is the family's absolute lifetime (D12): no token of the
    family outlives it and rotation never extends it."""

    family_id: str
    generation: int
    grant: RefreshGrant
    issued_at: int
    expires_at: int
    family_expires_at: int
    consumed_at: int | None = None


@dataclass(frozen=True, slots=True)
class Rotated:
    """The parent is consumed by this caller and ``child`` (the caller's token) is live."""

    parent: RefreshToken
    child: RefreshToken


@dataclass(frozen=True, slots=True)
class RotationRetried:
    """A retry inside the grace window: the *same* successor as the first rotation.

    ``token`` is that successor's raw value (decrypted from the retry state); it was unused
    when this retry was served. The caller checks the request against ``child.grant`` (same
    client, key and scope) and otherwise revokes the family.
    """

    token: str
    child: RefreshToken


@dataclass(frozen=True, slots=True)
class RotationRefused:
    """Nothing rotated and nothing revoked. ``retry_unavailable``: a retry inside the grace
    window whose stored successor cannot be decrypted (the secret changed): it fails closed
    without punishing the family."""

    reason: Literal["unknown", "expired", "revoked", "retry_unavailable"]


@dataclass(frozen=True, slots=True)
class ReuseDetected:
    """A consumed token was presented outside the grace window (or its successor was already
    used): the whole family is revoked, in this transaction (RFC 9700 §4.14.2)."""

    family_id: str


RotationResult: TypeAlias = Rotated | RotationRetried | RotationRefused | ReuseDetected


class RefreshTokenStore(Protocol):
    """Refresh-token families with rotation, a grace window and reuse detection.

    A token is *live* when it is known, unexpired and its family carries no revocation
    tombstone; tombstones are never swept, so a revoked family stays revoked.
    """

    def put(self, token: str, entry: RefreshToken) -> bool:
        """Store the first token (generation 0) of a new family.

        Return ``False`` if the family is already revoked or the token already exists.
        """
        ...

    def get(self, token: str) -> RefreshToken | None:
        """The token's entry if it is live (consumed or not), without consuming it.

        Checks that must not burn the token (client, sender constraint, scope) run on this.
        """
        ...

    def rotate(
        self,
        parent: str,
        child: str,
        *,
        expires_at: int,
        grant: RefreshGrant | None = None,
        grace: int = 0,
    ) -> RotationResult:
        """Exchange ``parent`` for ``child`` in one family-serialized transaction.

        Claims the parent, inserts ``child`` (same family, next generation, ``grant`` or the
        parent's grant, expiring at ``expires_at`` capped by the family's lifetime) and
        records the retry state: for ``grace`` seconds a retry of ``parent`` gets ``child``
        back while ``child`` is unused. ``grace`` is 0 without a successor secret.
        """
        ...

    def revoke_family(self, family_id: str) -> None:
        """Tombstone a family: none of its tokens is live afterwards. Idempotent."""
        ...

    def revoke_token(self, token: str) -> str | None:
        """Revoke the family of ``token`` (RFC 7009 §2.1); its family id, or ``None``."""
        ...

    def revoke_for(self, subject: str, client_id: str) -> int:
        """Revoke every family of (``subject``, ``client_id``): consent revocation (D12).

        Return how many families got a new tombstone.
        """
        ...


# Pushed and pending authorization requests (RFC 9126, D13) ----------


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """A validated authorization request waiting for the authorization endpoint.

    ``pushed`` is ``True`` for a request the client pushed and authenticated at the PAR
    endpoint (RFC 9126), ``False`` for a pending request the authorization endpoint parked
    while login or consent happens (D13). A server that requires PAR accepts only pushed
    ones. ``params`` is the validated request (JSON values only), never client credentials.
    """

    client_id: str
    params: Mapping[str, JSONValue]
    expires_at: int
    pushed: bool = True


class PushedRequestStore(Protocol):
    """Authorization requests by reference (``request_uri``), bound to their client.

    ``fetch`` does not consume (login and consent may leave and come back); ``take`` claims
    the reference once, when the code is issued. Another client's reference is unknown.
    """

    def put(self, reference: str, entry: PushedRequest) -> None:
        """Store ``entry`` under ``reference`` (raw value; only its hash is kept)."""
        ...

    def fetch(self, reference: str, client_id: str) -> PushedRequest | None:
        """The live request of ``client_id`` at ``reference``, left in place."""
        ...

    def take(self, reference: str, client_id: str) -> PushedRequest | None:
        """Claim and remove the live request: exactly one caller gets it."""
        ...


# The bundle core receives ----------


@dataclass(frozen=True, slots=True)
class Stores:
    """Every store a request may need, bound to that request's transaction."""

    codes: AuthorizationCodeStore
    refresh_tokens: RefreshTokenStore
    nonces: DPoPNonceStore
    replay: ReplayStore
    requests: PushedRequestStore
    revoked_access_tokens: RevokedAccessTokenStore
