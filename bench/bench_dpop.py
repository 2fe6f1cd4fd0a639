"""DPoP proof verification (RFC 9449) against the floors of its parts, in one run.

Floors: the raw ES256 verify of the same signing input with ``cryptography`` (the issue's
target: a warm proof <= 1.5x), and joserfc's own verify of the same proof with a
pre-imported key (DESIGN.md D22). Cold = the first proof from a key (import + thumbprint).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.dpop import DPoPKeyCache, HMACNonces, build_proof, verify_proof
from pyramid_attesto.core.encoding import b64url_decode
from pyramid_attesto.core.urls import normalize_htu

from ._harness import Row, measure, print_rows

NOW = 1_800_000_000
HTU = "https://as.example.com/token"
TOKEN = "an-access-token-of-some-length.abcdefghijklmnopqrstuvwxyz0123456789"


def _raw_verify(key: Key, proof: str) -> Callable[[], None]:
    """The bare signature check of the proof's signing input, with cryptography alone."""
    head, payload, sig = proof.split(".")
    signing_input = f"{head}.{payload}".encode("ascii")
    signature = b64url_decode(sig)
    public = key.public_key
    if isinstance(public, ec.EllipticCurvePublicKey):
        half = len(signature) // 2
        der = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        return lambda: public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    if isinstance(public, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return lambda: public.verify(signature, signing_input, pss, hashes.SHA256())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    return lambda: public.verify(signature, signing_input)


def _joserfc_verify(key: Key, proof: str, alg: str) -> Callable[[], object]:
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    registry.max_header_length = 8192
    public = type(key).import_key(key.as_dict(private=False))

    return lambda: jws.deserialize_compact(proof, public, registry=registry)


def _paths(name: str, key: Key, alg: str, *, number: int, target: float | None) -> list[Row]:
    clock = FrozenClock(NOW)
    proof = build_proof(key, "POST", HTU, access_token=TOKEN, clock=clock, alg=alg)
    cache = DPoPKeyCache()

    def warm() -> object:
        return verify_proof(
            proof, htm="POST", htu=HTU, clock=clock, access_token=TOKEN, key_cache=cache
        )

    def cold() -> object:
        return verify_proof(proof, htm="POST", htu=HTU, clock=clock, access_token=TOKEN)

    raw = measure(_raw_verify(key, proof), number=number)
    floor_jose = measure(_joserfc_verify(key, proof, alg), number=number)
    warm_us = measure(warm, number=number)
    cold_us = measure(cold, number=max(number // 4, 100))
    return [
        Row(f"{name} raw verify, cryptography (floor)", raw),
        Row(f"{name} joserfc verify, key imported (floor D22)", floor_jose, raw),
        Row(f"{name} DPoP proof, warm key cache (vs raw)", warm_us, raw, target),
        Row(f"{name} DPoP proof, warm key cache (vs joserfc)", warm_us, floor_jose),
        Row(f"{name} DPoP proof, cold: first proof from a key", cold_us, raw),
    ]


def main() -> None:
    with warnings.catch_warnings():
        # joserfc warns on every "EdDSA" verify (RFC 9864); the warning is not the cost.
        warnings.simplefilter("ignore", SecurityWarning)
        # The issue's target is ES256 (<= 1.5x raw); RSA and EdDSA are reported.
        rows = _paths("ES256", ECKey.generate_key("P-256"), "ES256", number=2000, target=1.5)
        rows += _paths("PS256", RSAKey.generate_key(2048), "PS256", number=2000, target=None)
        rows += _paths("EdDSA", OKPKey.generate_key("Ed25519"), "EdDSA", number=2000, target=None)
    print_rows("DPoP proof verification (RFC 9449 §4.3)", rows)

    clock = FrozenClock(NOW)
    nonces = HMACNonces([b"s" * 32, b"t" * 32], clock=clock)
    nonce = nonces.issue()

    def check() -> bool:
        assert nonces.check(nonce)
        return True

    def issue_new_window() -> str:
        clock.advance(300)
        return nonces.issue()

    checked = measure(check, number=5000)  # before the clock moves on
    print_rows(
        "DPoP server nonces and htu",
        [
            Row("HMAC nonce issue (same window, cached)", measure(nonces.issue, number=20000)),
            Row("HMAC nonce issue (new window)", measure(issue_new_window, number=5000)),
            Row("HMAC nonce check (2 secrets)", checked),
            Row(
                "htu normalisation (RFC 3986 §6.2.2-6.2.3)",
                measure(
                    lambda: normalize_htu("HTTPS://AS.example.com:443/%7euser/t"), number=20000
                ),
            ),
        ],
    )


if __name__ == "__main__":
    main()
