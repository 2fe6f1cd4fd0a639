"""JWS built by hand with `cryptography`, so the authz tests do not trust our own JOSE code
(or joserfc's signing) to produce what they verify."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int(value: int, size: int) -> str:
    return b64(value.to_bytes(size, "big"))


def public_jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _int(numbers.x, 32),
            "y": _int(numbers.y, 32),
            "kid": kid,
        }
    if isinstance(key, rsa.RSAPrivateKey):
        pub = key.public_key().public_numbers()
        size = (pub.n.bit_length() + 7) // 8
        return {
            "kty": "RSA",
            "n": _int(pub.n, size),
            "e": b64(pub.e.to_bytes(3, "big")),
            "kid": kid,
        }
    raw = key.public_key().public_bytes_raw()
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw), "kid": kid}


def sign(header: dict[str, Any], claims: dict[str, Any] | bytes, key: PrivateKey | None) -> str:
    """A compact JWS of ``claims`` with exactly ``header`` (``alg`` decides the signature)."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    data = signing_input.encode("ascii")
    alg = header.get("alg")
    if alg == "none" or key is None:
        return signing_input + "."
    if alg == "ES256":
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "PS256":
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(
            data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
        )
    elif alg == "RS256":
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "EdDSA":
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        signature = key.sign(data)
    else:
        raise ValueError(alg)
    return f"{signing_input}.{b64(signature)}"
