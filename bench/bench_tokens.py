"""Access-token mint and verify (RFC 9068) against their floors, measured in the same run.

Floors: the raw `cryptography` sign/verify of the same signing input (for ES256 the verify
floor is given the DER signature ready-made), and joserfc's own ``jws.deserialize_compact`` of
the same token with the same cached key (DESIGN.md D22). Target: our ES256 verify, claims
checks included, within 1.6x the raw verify (DESIGN.md rule 11, perf-floors.md).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jws
from joserfc.errors import SecurityWarning

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.encoding import b64url_decode
from pyramid_attesto.core.keys import Algorithm, StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter, AccessTokenVerifier

from ._harness import Row, measure, print_rows

ISSUER = "https://as.example.com"
RESOURCE = "https://api.example.com/"
VERIFY_TARGET = 1.6


def _raw(alg: Algorithm, key: object, token: str) -> tuple[Callable[[], object], ...]:
    """Raw `cryptography` verify and sign of the token's signing input."""
    header, payload, signature_b64 = token.split(".")
    data, signature = f"{header}.{payload}".encode(), b64url_decode(signature_b64)
    public = key.get_op_key("verify")  # type: ignore[attr-defined]
    private = key.get_op_key("sign")  # type: ignore[attr-defined]
    if alg == "ES256":
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        return (
            lambda: public.verify(der, data, ec.ECDSA(hashes.SHA256())),
            lambda: private.sign(data, ec.ECDSA(hashes.SHA256())),
        )
    if alg == "EdDSA":
        return (lambda: public.verify(signature, data), lambda: private.sign(data))
    return (
        lambda: public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256()),
        lambda: private.sign(data, padding.PKCS1v15(), hashes.SHA256()),
    )


def main() -> None:
    logging.getLogger("pyramid_attesto").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # joserfc's registry warns on every EdDSA use (RFC 9864 deprecates the name).
        warnings.simplefilter("ignore", SecurityWarning)
        _main()


def _main() -> None:
    clock = FrozenClock(1_700_000_000)
    claims = AccessTokenClaims(
        subject="usr_alice",
        client_id="client-1",
        audience=RESOURCE,
        scopes=("read:reports", "write:reports"),
        cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
    )
    rows: list[Row] = []
    for alg in ("ES256", "EdDSA", "RS256"):
        signer = private_signer(generate_key(alg))
        keystore = StaticKeystore([signer])
        minter = AccessTokenMinter(keystore, issuer=ISSUER, clock=clock)
        verifier = AccessTokenVerifier(keystore, issuer=ISSUER, audience=RESOURCE, clock=clock)
        token = minter.mint(claims).token
        public_key = keystore.verification_key(signer.kid, alg)
        registry = jws.JWSRegistry(algorithms=[alg])
        raw_verify, raw_sign = _raw(alg, signer.key, token)
        number = 300 if alg == "RS256" else 2000

        floor_verify = measure(raw_verify, number=number)
        joserfc_verify = measure(
            lambda t=token, k=public_key, r=registry: jws.deserialize_compact(t, k, registry=r),
            number=number,
        )
        ours_verify = measure(lambda v=verifier, t=token: v.verify(t), number=number)
        floor_sign = measure(raw_sign, number=number // 4 if alg == "RS256" else number)
        ours_mint = measure(
            lambda m=minter: m.mint(claims), number=number // 4 if alg == "RS256" else number
        )
        target = VERIFY_TARGET if alg == "ES256" else None
        rows += [
            Row(f"{alg} raw cryptography verify", floor_verify),
            Row(f"{alg} joserfc deserialize_compact (cached key)", joserfc_verify, floor_verify),
            Row(f"{alg} AccessTokenVerifier.verify vs raw", ours_verify, floor_verify, target),
            Row(f"{alg} AccessTokenVerifier.verify vs joserfc", ours_verify, joserfc_verify),
            Row(f"{alg} raw cryptography sign", floor_sign),
            Row(f"{alg} AccessTokenMinter.mint vs raw sign", ours_mint, floor_sign),
        ]
    print_rows("RFC 9068 access tokens: mint and verify", rows)


if __name__ == "__main__":
    main()
