"""The decoder keeps the checked header of tokens that verified (tokens from one key share
it); the key lookup and the signature still run on every token."""

from __future__ import annotations

from typing import Any

import pytest

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import InvalidToken
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter, AccessTokenVerifier

ISSUER = "https://as.example"
AUDIENCE = "https://api.example"


class Toggle:
    """A keystore whose verification keys can be withdrawn (a rotation's last step)."""

    def __init__(self, inner: StaticKeystore) -> None:
        self.inner = inner
        self.withdrawn = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def verification_key(self, kid: str, alg: str) -> Any:
        return None if self.withdrawn else self.inner.verification_key(kid, alg)


def _setup() -> tuple[Toggle, AccessTokenMinter, AccessTokenVerifier]:
    clock = FrozenClock(1_800_000_000)
    keystore = StaticKeystore([private_signer(generate_key("ES256"))])
    toggle = Toggle(keystore)
    minter = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock)
    verifier = AccessTokenVerifier(toggle, issuer=ISSUER, audience=AUDIENCE, clock=clock)  # type: ignore[arg-type]
    return toggle, minter, verifier


def _mint(minter: AccessTokenMinter, subject: str = "alice") -> str:
    return minter.mint(AccessTokenClaims(subject=subject, client_id="c", audience=AUDIENCE)).token


def test_a_withdrawn_key_is_refused_even_with_its_header_cached_rfc7515_4_1_4() -> None:
    toggle, minter, verifier = _setup()
    first, second = _mint(minter, "alice"), _mint(minter, "bob")
    assert first.split(".")[0] == second.split(".")[0]  # one key, one header segment
    assert verifier.verify(first).subject == "alice"
    toggle.withdrawn = True
    with pytest.raises(InvalidToken) as info:
        verifier.verify(second)
    assert info.value.reason == "unknown_kid"


def test_a_bad_signature_is_refused_with_the_header_cached_rfc7515_5_2() -> None:
    _, minter, verifier = _setup()
    good = _mint(minter)
    verifier.verify(good)
    header, payload, signature = _mint(minter, "mallory").split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidToken) as info:
        verifier.verify(forged)
    assert info.value.reason == "bad_signature"


def test_only_headers_of_verified_tokens_are_kept() -> None:
    _, minter, verifier = _setup()
    header, payload, signature = _mint(minter).split(".")
    decoder = verifier._decoder
    with pytest.raises(InvalidToken):
        verifier.verify(f"{header}.{payload}.{signature[:-4]}AAAA")
    assert decoder._headers == {}
    verifier.verify(f"{header}.{payload}.{signature}")
    assert list(decoder._headers) == [header]


def test_signed_headers_name_their_own_key_and_type_rfc7515_4_1() -> None:
    # The encoder keeps encoded headers per (alg, typ, kid): each token still names its own.
    import base64
    import json

    from pyramid_attesto.core.jwt import encode_jwt

    signers = [private_signer(generate_key(alg)) for alg in ("ES256", "ES256", "EdDSA")]
    for _ in range(2):
        for signer in signers:
            for typ in ("at+jwt", "JWT"):
                segment = encode_jwt(signer, typ, {"sub": "x"}).split(".")[0]
                header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
                assert header == {"alg": signer.alg, "typ": typ, "kid": signer.kid}
