"""The store contract (DESIGN.md rule 2), run against memory, SQLite and PostgreSQL.

Every test takes the ``stores`` of the parametrized ``store_kind`` and a frozen clock; the
same assertions hold for every implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pyramid_attesto.core.stores import (
    AuthorizationCode,
    CodeRefused,
    CodeReused,
    CodeTaken,
    IssuedAccessToken,
    PushedRequest,
    RefreshGrant,
    RefreshToken,
    ReuseDetected,
    Rotated,
    RotationRefused,
    RotationRetried,
    Stores,
)

if TYPE_CHECKING:
    from conftest import StoreBackend

NOW = 1_700_000_000  # where the store_backend clock starts


def code_entry(**overrides: object) -> AuthorizationCode:
    values: dict[str, object] = {
        "client_id": "client-1",
        "subject": "user:42",
        "redirect_uri": "https://app.example/cb",
        "scope": ("openid", "read:reports"),
        "expires_at": NOW + 60,
        "resource": ("https://api.example/",),
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "nonce": "n-0S6_WzA2Mj",
        "dpop_jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        "auth_time": NOW - 5,
        "acr": "urn:mace:incommon:iap:silver",
        "extra": {"claims": {"userinfo": {"email": None}}, "sid": "s-1", "n": [1, 2.5, True]},
    }
    values.update(overrides)
    return AuthorizationCode(**values)  # type: ignore[arg-type]


GRANT = RefreshGrant(
    client_id="client-1",
    subject="user:42",
    scope=("openid", "offline_access", "read:reports"),
    resource=("https://api.example/",),
    dpop_jkt="0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    auth_time=NOW - 5,
    acr="1",
    extra={"principal_kind": "user"},
)


def family(family_id: str = "fam-1", *, ttl: int = 3600, lifetime: int = 86_400) -> RefreshToken:
    return RefreshToken(
        family_id=family_id,
        generation=0,
        grant=GRANT,
        issued_at=NOW,
        expires_at=NOW + ttl,
        family_expires_at=NOW + lifetime,
    )


# Authorization codes -----------------------------------------------------------------------


def test_code_round_trips_every_field(stores: Stores) -> None:
    entry = code_entry()
    stores.codes.put("code-a", entry)
    assert stores.codes.take("code-a") == CodeTaken(entry)


def test_code_is_taken_once_rfc6749_4_1_2(stores: Stores) -> None:
    """RFC 6749 §4.1.2: the client MUST NOT use the code more than once."""
    stores.codes.put("code-a", code_entry())
    assert isinstance(stores.codes.take("code-a"), CodeTaken)
    assert stores.codes.take("code-a") == CodeRefused("consumed")


def test_code_consumed_by_a_failed_request_is_not_reported_as_reuse_rfc6749_4_1_2(
    stores: Stores,
) -> None:
    """A request that took the code and then failed (bad verifier, server error) issued no
    tokens: a retry is refused as consumed, without revoking anything."""
    stores.codes.put("code-a", code_entry())
    stores.codes.take("code-a")
    assert stores.codes.take("code-a") == CodeRefused("consumed")


def test_reuse_of_a_finalized_code_reports_family_and_tokens_rfc6749_4_1_2(
    stores: Stores,
) -> None:
    """RFC 6749 §4.1.2 / RFC 9700 §4.5: a code used twice revokes the tokens it produced."""
    stores.codes.put("code-a", code_entry())
    stores.codes.take("code-a")
    issued = (IssuedAccessToken("jti-1", NOW + 900),)
    assert stores.codes.finalize("code-a", family_id="fam-9", access_tokens=issued)
    reused = stores.codes.take("code-a")
    assert reused == CodeReused("client-1", "user:42", "fam-9", issued)
    assert stores.codes.take("code-a") == reused


def test_reuse_without_refresh_token_reports_no_family(stores: Stores) -> None:
    stores.codes.put("code-a", code_entry())
    stores.codes.take("code-a")
    stores.codes.finalize("code-a", family_id=None, access_tokens=())
    assert stores.codes.take("code-a") == CodeReused("client-1", "user:42", None, ())


def test_finalize_needs_a_consumed_unfinalized_code(stores: Stores) -> None:
    stores.codes.put("code-a", code_entry())
    assert not stores.codes.finalize("code-a", family_id="f", access_tokens=())
    assert not stores.codes.finalize("nope", family_id="f", access_tokens=())
    stores.codes.take("code-a")
    assert stores.codes.finalize("code-a", family_id="f", access_tokens=())
    assert not stores.codes.finalize("code-a", family_id="g", access_tokens=())
    assert stores.codes.take("code-a") == CodeReused("client-1", "user:42", "f", ())


def test_expired_code_is_refused_rfc6749_4_1_2(stores: Stores, store_backend: StoreBackend) -> None:
    stores.codes.put("code-a", code_entry(expires_at=NOW + 60))
    store_backend.clock.advance(60)
    assert stores.codes.take("code-a") == CodeRefused("expired")


def test_reuse_is_still_recognised_after_the_code_expired(
    stores: Stores, store_backend: StoreBackend
) -> None:
    stores.codes.put("code-a", code_entry(expires_at=NOW + 60))
    stores.codes.take("code-a")
    stores.codes.finalize("code-a", family_id="f", access_tokens=())
    store_backend.clock.advance(3600)
    assert isinstance(stores.codes.take("code-a"), CodeReused)


def test_unknown_code(stores: Stores) -> None:
    assert stores.codes.take("never-issued") == CodeRefused("unknown")


def test_duplicate_code_is_a_bug(stores: Stores) -> None:
    stores.codes.put("code-a", code_entry())
    with pytest.raises(ValueError, match="already exists"):
        stores.codes.put("code-a", code_entry())


# Refresh tokens -------------------------------------------------------------------------------


def test_refresh_token_round_trips(stores: Stores) -> None:
    assert stores.refresh_tokens.put("rt-0", family())
    assert stores.refresh_tokens.get("rt-0") == family()
    assert stores.refresh_tokens.get("unknown") is None


def test_put_stores_only_a_first_generation(stores: Stores) -> None:
    with pytest.raises(ValueError, match="first"):
        stores.refresh_tokens.put("rt-1", RefreshToken("f", 1, GRANT, NOW, NOW + 1, NOW + 2))


def test_rotation_consumes_the_parent_and_adds_the_next_generation_rfc9700_4_14_2(
    stores: Stores, store_backend: StoreBackend
) -> None:
    stores.refresh_tokens.put("rt-0", family())
    store_backend.clock.advance(10)
    result = stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 10 + 3600)
    assert isinstance(result, Rotated)
    assert result.parent.consumed_at == NOW + 10
    assert result.child == RefreshToken("fam-1", 1, GRANT, NOW + 10, NOW + 3610, NOW + 86_400)
    assert stores.refresh_tokens.get("rt-1") == result.child
    parent = stores.refresh_tokens.get("rt-0")
    assert parent is not None
    assert parent.consumed_at == NOW + 10


def test_rotation_can_narrow_the_grant(stores: Stores) -> None:
    stores.refresh_tokens.put("rt-0", family())
    narrow = RefreshGrant(
        client_id="client-1", subject="user:42", scope=("openid",), auth_time=NOW - 5, acr="1"
    )
    result = stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 60, grant=narrow)
    assert isinstance(result, Rotated)
    assert result.child.grant == narrow
    child = stores.refresh_tokens.get("rt-1")
    assert child is not None
    assert child.grant == narrow


def test_rotation_never_extends_the_family_lifetime_d12(stores: Stores) -> None:
    stores.refresh_tokens.put("rt-0", family(lifetime=100))
    result = stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600)
    assert isinstance(result, Rotated)
    assert result.child.expires_at == NOW + 100 == result.child.family_expires_at


def test_family_past_its_absolute_lifetime_cannot_rotate_d12(
    stores: Stores, store_backend: StoreBackend
) -> None:
    stores.refresh_tokens.put("rt-0", family(ttl=100, lifetime=100))
    store_backend.clock.advance(100)
    assert stores.refresh_tokens.get("rt-0") is None
    assert stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 999) == (
        RotationRefused("expired")
    )


def test_unknown_refresh_token_is_refused(stores: Stores) -> None:
    assert stores.refresh_tokens.rotate("nope", "rt-1", expires_at=NOW + 9) == (
        RotationRefused("unknown")
    )


def test_retry_inside_grace_window_gets_the_same_successor_rfc9700_4_14_2(
    stores: Stores, store_backend: StoreBackend
) -> None:
    stores.refresh_tokens.put("rt-0", family())
    first = stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600, grace=30)
    assert isinstance(first, Rotated)
    store_backend.clock.advance(30)
    retry = stores.refresh_tokens.rotate("rt-0", "rt-other", expires_at=NOW + 3600, grace=30)
    assert retry == RotationRetried("rt-1", first.child)
    assert stores.refresh_tokens.get("rt-1") == first.child
    assert stores.refresh_tokens.get("rt-other") is None


def test_reuse_after_grace_window_revokes_the_family_rfc9700_4_14_2(
    stores: Stores, store_backend: StoreBackend
) -> None:
    stores.refresh_tokens.put("rt-0", family())
    stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600, grace=30)
    store_backend.clock.advance(31)
    assert stores.refresh_tokens.rotate("rt-0", "rt-x", expires_at=NOW + 9999, grace=30) == (
        ReuseDetected("fam-1")
    )
    assert stores.refresh_tokens.get("rt-1") is None
    assert stores.refresh_tokens.rotate("rt-1", "rt-2", expires_at=NOW + 9999) == (
        RotationRefused("revoked")
    )


def test_grace_window_does_not_replay_an_already_used_successor_rfc9700_4_14_2(
    stores: Stores,
) -> None:
    """The grace window covers only a successor nobody used yet."""
    stores.refresh_tokens.put("rt-0", family())
    stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600, grace=30)
    assert isinstance(
        stores.refresh_tokens.rotate("rt-1", "rt-2", expires_at=NOW + 3600, grace=30), Rotated
    )
    assert stores.refresh_tokens.rotate("rt-0", "rt-x", expires_at=NOW + 3600, grace=30) == (
        ReuseDetected("fam-1")
    )
    assert stores.refresh_tokens.get("rt-2") is None


def test_strict_rotation_treats_any_retry_as_reuse_rfc9700_4_14_2(stores: Stores) -> None:
    stores.refresh_tokens.put("rt-0", family())
    stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600, grace=0)
    assert stores.refresh_tokens.rotate("rt-0", "rt-1b", expires_at=NOW + 3600) == (
        ReuseDetected("fam-1")
    )
    assert stores.refresh_tokens.get("rt-1") is None


def test_no_grace_window_without_a_successor_secret_d12(store_backend: StoreBackend) -> None:
    stores = store_backend.build(successor_secret=None)
    stores.refresh_tokens.put("rt-0", family())
    stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600, grace=30)
    assert stores.refresh_tokens.rotate("rt-0", "rt-1b", expires_at=NOW + 3600, grace=30) == (
        ReuseDetected("fam-1")
    )


def test_revoked_family_is_dead_and_stays_revoked_rfc7009_2_1(stores: Stores) -> None:
    stores.refresh_tokens.put("rt-0", family())
    stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600, grace=30)
    stores.refresh_tokens.revoke_family("fam-1")
    stores.refresh_tokens.revoke_family("fam-1")
    assert stores.refresh_tokens.get("rt-0") is None
    assert stores.refresh_tokens.get("rt-1") is None
    for token in ("rt-0", "rt-1"):
        assert stores.refresh_tokens.rotate(token, "x", expires_at=NOW + 9, grace=30) == (
            RotationRefused("revoked")
        )
    assert not stores.refresh_tokens.put("rt-new", family("fam-1"))


def test_revoke_token_revokes_its_family_rfc7009_2_1(stores: Stores) -> None:
    """RFC 7009 §2.1: revoking a refresh token may revoke the whole grant."""
    stores.refresh_tokens.put("rt-0", family())
    stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 3600)
    assert stores.refresh_tokens.revoke_token("rt-0") == "fam-1"
    assert stores.refresh_tokens.get("rt-1") is None
    assert stores.refresh_tokens.revoke_token("unknown") is None


def test_consent_revocation_revokes_every_family_of_subject_and_client_d12(
    stores: Stores,
) -> None:
    other_client = RefreshGrant(client_id="client-2", subject="user:42", scope=("a",))
    other_user = RefreshGrant(client_id="client-1", subject="user:7", scope=("a",))
    stores.refresh_tokens.put("a", family("fam-a"))
    stores.refresh_tokens.put("b", family("fam-b"))
    stores.refresh_tokens.rotate("b", "b1", expires_at=NOW + 60)
    stores.refresh_tokens.put("c", RefreshToken("fam-c", 0, other_client, NOW, NOW + 60, NOW + 60))
    stores.refresh_tokens.put("d", RefreshToken("fam-d", 0, other_user, NOW, NOW + 60, NOW + 60))
    assert stores.refresh_tokens.revoke_for("user:42", "client-1") == 2
    assert stores.refresh_tokens.revoke_for("user:42", "client-1") == 0
    assert [stores.refresh_tokens.get(t) is not None for t in ("a", "b1", "c", "d")] == [
        False,
        False,
        True,
        True,
    ]


def test_expired_refresh_token_is_refused(stores: Stores, store_backend: StoreBackend) -> None:
    stores.refresh_tokens.put("rt-0", family(ttl=10))
    store_backend.clock.advance(10)
    assert stores.refresh_tokens.get("rt-0") is None
    assert stores.refresh_tokens.rotate("rt-0", "rt-1", expires_at=NOW + 99) == (
        RotationRefused("expired")
    )


# DPoP nonces ---------------------------------------------------------------------------------


def test_nonce_is_valid_until_it_expires_rfc9449_8(
    stores: Stores, store_backend: StoreBackend
) -> None:
    nonce = stores.nonces.issue(30)
    assert len(nonce) >= 43
    assert stores.nonces.check(nonce)
    assert stores.nonces.check(nonce)  # not single use: valid for its whole lifetime
    store_backend.clock.advance(30)
    assert not stores.nonces.check(nonce)


def test_unknown_or_malformed_nonce_is_refused_rfc9449_8(stores: Stores) -> None:
    assert not stores.nonces.check("never-issued")
    assert not stores.nonces.check("x" * 5000)
    assert not stores.nonces.check("nul\x00byte")
    assert stores.nonces.issue(30) != stores.nonces.issue(30)


# Replay keys -------------------------------------------------------------------------------


def test_replay_key_is_recorded_once_rfc9449_11_1(stores: Stores) -> None:
    assert stores.replay.check_and_record("k1", NOW + 120)
    assert not stores.replay.check_and_record("k1", NOW + 120)
    assert stores.replay.check_and_record("k2", NOW + 120)


def test_expired_but_unswept_replay_key_still_counts_rfc9449_11_1(
    stores: Stores, store_backend: StoreBackend
) -> None:
    assert stores.replay.check_and_record("k1", NOW + 120)
    store_backend.clock.advance(120)
    assert not stores.replay.check_and_record("k1", NOW + 240)


def test_replay_key_is_free_again_after_the_sweep(
    stores: Stores, store_backend: StoreBackend
) -> None:
    stores.replay.check_and_record("k1", NOW + 120)
    store_backend.clock.advance(121)
    store_backend.sweep()
    assert stores.replay.check_and_record("k1", NOW + 240)


# Pushed / pending authorization requests ------------------------------------------------------


REQUEST = PushedRequest(
    client_id="client-1",
    params={"response_type": "code", "scope": "openid", "max_age": 0, "claims": {"a": None}},
    expires_at=NOW + 90,
)


def test_request_fetch_does_not_consume_rfc9126_2_2(stores: Stores) -> None:
    stores.requests.put("urn:ietf:params:oauth:request_uri:abc", REQUEST)
    for _ in range(2):
        assert stores.requests.fetch("urn:ietf:params:oauth:request_uri:abc", "client-1") == (
            REQUEST
        )


def test_request_is_taken_once_rfc9126_4(stores: Stores) -> None:
    """RFC 9126 §4: a request_uri is one-time use."""
    stores.requests.put("ref", REQUEST)
    assert stores.requests.take("ref", "client-1") == REQUEST
    assert stores.requests.take("ref", "client-1") is None
    assert stores.requests.fetch("ref", "client-1") is None


def test_request_is_bound_to_its_client_rfc9126_2_2(stores: Stores) -> None:
    """RFC 9126 §2.2: the request_uri is bound to the client that pushed it."""
    stores.requests.put("ref", REQUEST)
    assert stores.requests.fetch("ref", "client-2") is None
    assert stores.requests.take("ref", "client-2") is None
    assert stores.requests.take("ref", "client\x00") is None
    assert stores.requests.take("ref", "client-1") == REQUEST


def test_expired_request_is_gone_rfc9126_2_2(stores: Stores, store_backend: StoreBackend) -> None:
    stores.requests.put("ref", REQUEST)
    store_backend.clock.advance(90)
    assert stores.requests.fetch("ref", "client-1") is None
    assert stores.requests.take("ref", "client-1") is None


def test_pending_request_keeps_its_origin_d13(stores: Stores) -> None:
    pending = PushedRequest("client-1", {"state": "xyz"}, NOW + 600, pushed=False)
    stores.requests.put("pending-1", pending)
    assert stores.requests.fetch("pending-1", "client-1") == pending


def test_duplicate_request_reference_is_a_bug(stores: Stores) -> None:
    stores.requests.put("ref", REQUEST)
    with pytest.raises(ValueError, match="already exists"):
        stores.requests.put("ref", REQUEST)


# Revoked access tokens -------------------------------------------------------------------------


def test_denylist(stores: Stores) -> None:
    assert not stores.revoked_access_tokens.is_revoked("jti-1")
    stores.revoked_access_tokens.add("jti-1", NOW + 900)
    stores.revoked_access_tokens.add("jti-1", NOW + 900)
    assert stores.revoked_access_tokens.is_revoked("jti-1")
    assert not stores.revoked_access_tokens.is_revoked("jti-2")
    assert not stores.revoked_access_tokens.is_revoked("jti\x00")


# Sweeping ---------------------------------------------------------------------------------------


def test_sweep_deletes_expired_rows_and_keeps_tombstones(
    stores: Stores, store_backend: StoreBackend
) -> None:
    stores.codes.put("code-live", code_entry(expires_at=NOW + 100_000))
    stores.codes.put("code-old", code_entry(expires_at=NOW + 10))
    stores.refresh_tokens.put("rt-old", family("fam-old", ttl=10))
    stores.refresh_tokens.put("rt-live", family("fam-live", ttl=100_000, lifetime=100_000))
    stores.refresh_tokens.revoke_family("fam-old")
    stores.nonces.issue(10)
    stores.replay.check_and_record("k", NOW + 10)
    stores.requests.put("ref", REQUEST)
    stores.revoked_access_tokens.add("jti", NOW + 10)
    store_backend.clock.advance(90_000)  # past every short expiry and the code retention

    counts = store_backend.sweep()

    # The SQL sweep also reports the client tables (tests/storage/test_store_registrations.py).
    client_tables = ("redacted", "registered_clients", "client_id_metadata")
    assert {k: v for k, v in counts.items() if k not in client_tables} == {
        "codes": 1,
        "refresh_tokens": 1,
        "nonces": 1,
        "replay": 1,
        "requests": 1,
        "revoked_access_tokens": 1,
    }
    assert isinstance(stores.codes.take("code-live"), CodeTaken)
    assert stores.refresh_tokens.get("rt-live") is not None
    assert not stores.refresh_tokens.put("rt-again", family("fam-old"))  # tombstone kept
    assert store_backend.sweep() == dict.fromkeys(counts, 0)
