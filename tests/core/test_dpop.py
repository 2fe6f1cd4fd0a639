"""DPoP proof verification (RFC 9449).

Every proof here is signed by the test itself with ``cryptography`` (see :class:`ClientKey`),
never with :func:`pyramid_attesto.core.dpop.build_proof`, so a bug shared by our builder and
our verifier cannot hide. The builder has its own round-trip test at the end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.dpop import (
    DEFAULT_ALGORITHMS,
    DPoPKeyCache,
    DPoPPolicy,
    DPoPProof,
    DPoPVerifier,
    HMACNonces,
    allowed_algorithms,
    build_proof,
    claim_replay,
    compute_ath,
    single_dpop_header,
    verify_proof,
)
from pyramid_attesto.core.errors import ConfigurationError, InvalidDPoPProof, UseDPoPNonce

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dpop"
RFC = json.loads((FIXTURES / "rfc9449_examples.json").read_text(encoding="utf-8"))

NOW = 1_800_000_000
HTM = "POST"
HTU = "https://as.example.com/token"
TOKEN = "an-access-token"


# -- a DPoP client written with cryptography only -------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_int(number: int, size: int | None = None) -> str:
    return b64(number.to_bytes(size or (number.bit_length() + 7) // 8, "big"))


def sha256_b64(text: str) -> str:
    return b64(hashlib.sha256(text.encode("utf-8")).digest())


_CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


class ClientKey:
    """A client's key pair and the JWS signing RFC 7515 §5.1 describes, by hand."""

    def __init__(self, alg: str, *, rsa_bits: int = 2048) -> None:
        self.alg = alg
        if alg in _CURVES:
            self.private: Any = ec.generate_private_key(_CURVES[alg])
        elif alg[:2] in ("RS", "PS"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()

    @property
    def jwk(self) -> dict[str, str]:
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            size = (public.curve.key_size + 7) // 8
            numbers = public.public_numbers()
            crv = {256: "P-256", 384: "P-384", 521: "P-521"}[public.curve.key_size]
            return {
                "kty": "EC",
                "crv": crv,
                "x": b64_int(numbers.x, size),
                "y": b64_int(numbers.y, size),
            }
        if isinstance(public, rsa.RSAPublicKey):
            rsa_numbers = public.public_numbers()
            return {"kty": "RSA", "n": b64_int(rsa_numbers.n), "e": b64_int(rsa_numbers.e)}
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
        }

    @property
    def jkt(self) -> str:
        """RFC 7638 §3: SHA-256 of the required members, sorted, no whitespace."""
        required = {
            "EC": ("crv", "kty", "x", "y"),
            "RSA": ("e", "kty", "n"),
            "OKP": ("crv", "kty", "x"),
        }
        jwk = self.jwk
        members = {name: jwk[name] for name in required[jwk["kty"]]}
        return sha256_b64(json.dumps(members, separators=(",", ":"), sort_keys=True))

    def sign(self, signing_input: bytes, alg: str | None = None) -> bytes:
        alg = alg or self.alg
        if alg in _CURVES:
            der = self.private.sign(signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
            r, s = decode_dss_signature(der)
            size = (self.private.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg.startswith("RS"):
            return bytes(self.private.sign(signing_input, padding.PKCS1v15(), _HASHES[alg[2:]]()))
        if alg.startswith("PS"):
            digest = _HASHES[alg[2:]]
            pss = padding.PSS(mgf=padding.MGF1(digest()), salt_length=digest.digest_size)
            return bytes(self.private.sign(signing_input, pss, digest()))
        return bytes(self.private.sign(signing_input))

    def proof(
        self,
        *,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        drop_header: tuple[str, ...] = (),
        drop_claims: tuple[str, ...] = (),
        header_json: str | None = None,
        payload_json: str | None = None,
    ) -> str:
        """A proof for ``POST https://as.example.com/token`` at ``NOW``, with overrides."""
        full_header: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk}
        full_header.update(header or {})
        full_claims: dict[str, Any] = {"jti": "jti-1", "htm": HTM, "htu": HTU, "iat": NOW}
        full_claims.update(claims or {})
        for name in drop_header:
            full_header.pop(name)
        for name in drop_claims:
            full_claims.pop(name)
        h = b64((header_json or json.dumps(full_header)).encode("utf-8"))
        p = b64((payload_json or json.dumps(full_claims)).encode("utf-8"))
        signing_input = f"{h}.{p}".encode("ascii")
        return f"{h}.{p}.{b64(self.sign(signing_input))}"


@cache
def client(alg: str = "ES256") -> ClientKey:
    return ClientKey(alg)


@cache
def weak_rsa_client() -> ClientKey:
    return ClientKey("RS256", rsa_bits=1024)


def verify(proof: str, **options: Any) -> DPoPProof:
    options.setdefault("htm", HTM)
    options.setdefault("htu", HTU)
    options.setdefault("clock", FrozenClock(NOW))
    return verify_proof(proof, **options)


def refused(proof: str, reason: str, **options: Any) -> InvalidDPoPProof:
    with pytest.raises(InvalidDPoPProof) as caught:
        verify(proof, **options)
    assert caught.value.reason == reason, caught.value
    assert caught.value.error == "invalid_dpop_proof"
    assert caught.value.to_dict()["error"] == "invalid_dpop_proof"
    return caught.value


class MemoryReplayStore:
    def __init__(self) -> None:
        self.records: dict[str, int] = {}

    def check_and_record(self, key: str, expires_at: int) -> bool:
        if key in self.records:
            return False
        self.records[key] = expires_at
        return True


# -- RFC 9449 examples ------------------------------------------------------------------------


def _rfc_public_key() -> ec.EllipticCurvePublicKey:
    jwk = RFC["jwk"]

    def num(v: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")

    return ec.EllipticCurvePublicNumbers(num(jwk["x"]), num(jwk["y"]), ec.SECP256R1()).public_key()


@pytest.mark.parametrize("name", ["token_request_proof", "resource_request_proof"])
def test_the_rfc_example_proofs_are_authentic_rfc9449(name: str) -> None:
    """The fixture's proofs verify with the RFC's key, independently of our code, and decode
    to the header and claims the RFC prints."""
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    example = RFC[name]
    h, p, s = example["proof"].split(".")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    _rfc_public_key().verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(base64.urlsafe_b64decode(h + "==")) == example["header"]
    assert json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) == example["payload"]


def test_rfc_token_request_proof_verifies_rfc9449_4_1() -> None:
    example = RFC["token_request_proof"]
    payload = example["payload"]
    result = verify(
        example["proof"], htm="POST", htu=payload["htu"], clock=FrozenClock(payload["iat"])
    )
    assert result.jkt == RFC["jkt"]
    assert (result.jti, result.htm, result.htu, result.iat) == (
        payload["jti"],
        payload["htm"],
        payload["htu"],
        payload["iat"],
    )
    assert result.alg == "ES256"
    assert result.ath is None
    assert result.nonce is None


def test_rfc_resource_request_proof_verifies_with_ath_and_jkt_rfc9449_7_1() -> None:
    example = RFC["resource_request_proof"]
    payload = example["payload"]
    result = verify(
        example["proof"],
        htm="GET",
        htu=payload["htu"],
        clock=FrozenClock(payload["iat"]),
        access_token=RFC["access_token"],
        jkt=RFC["jkt"],
    )
    assert result.ath == RFC["ath"]
    assert result.jkt == RFC["jkt"]


def test_rfc_jwk_thumbprint_rfc9449_6_1() -> None:
    from joserfc.jwk import ECKey

    assert ECKey.import_key(RFC["jwk"]).thumbprint() == RFC["jkt"]
    members = {k: RFC["jwk"][k] for k in ("crv", "kty", "x", "y")}
    assert sha256_b64(json.dumps(members, separators=(",", ":"), sort_keys=True)) == RFC["jkt"]


def test_rfc_ath_rfc9449_7_1() -> None:
    assert compute_ath(RFC["access_token"]) == RFC["ath"]
    assert sha256_b64(RFC["access_token"]) == RFC["ath"]


def test_rfc_resource_proof_with_another_token_is_refused_rfc9449_7_1() -> None:
    example = RFC["resource_request_proof"]
    refused(
        example["proof"],
        "ath_mismatch",
        htm="GET",
        htu=example["payload"]["htu"],
        clock=FrozenClock(example["payload"]["iat"]),
        access_token=RFC["access_token"] + "x",
    )


# -- what is accepted -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
def test_each_default_algorithm_verifies_rfc9449_4_2(alg: str) -> None:
    key = client(alg)
    result = verify(key.proof(claims={"ath": sha256_b64(TOKEN)}), access_token=TOKEN)
    assert result.alg == alg
    assert result.jkt == key.jkt
    assert result.replay_key == sha256_b64(f"{key.jkt}:jti-1")
    assert result.expires_at == NOW + 60 + 1


def test_iat_window_boundaries_are_inclusive_rfc9449_11_1() -> None:
    key = client()
    assert verify(key.proof(claims={"iat": NOW - 60})).iat == NOW - 60
    assert verify(key.proof(claims={"iat": NOW + 60})).iat == NOW + 60
    assert verify(key.proof(claims={"iat": NOW + 0.5})).iat == NOW + 0.5


def test_the_window_is_configurable() -> None:
    key = client()
    policy = DPoPPolicy(max_age=300, max_future=5)
    result = verify(key.proof(claims={"iat": NOW - 300}), policy=policy)
    assert result.expires_at == NOW - 300 + 300 + 1
    refused(key.proof(claims={"iat": NOW + 6}), "iat_in_future", policy=policy)


def test_the_replay_record_outlives_the_acceptance_window_rfc9449_11_1() -> None:
    key = client()
    for iat in (NOW - 60, NOW, NOW + 60, NOW + 0.7):
        result = verify(key.proof(claims={"iat": iat}))
        last_accepted_moment = iat + 60
        assert result.expires_at >= last_accepted_moment
        assert result.expires_at == math.floor(iat) + 61


def test_extra_header_parameters_and_claims_are_allowed_rfc9449_4_2() -> None:
    key = client()
    jwk = {**key.jwk, "kid": "client-key-1", "use": "sig", "alg": "ES256", "key_ops": ["verify"]}
    proof = key.proof(header={"jwk": jwk, "x-extra": 1}, claims={"extra": [1, 2]})
    assert verify(proof).jkt == key.jkt  # kid and friends are not part of the thumbprint


def test_htu_is_compared_after_normalisation_rfc9449_4_3_rule1() -> None:
    key = client()
    proof = key.proof(claims={"htu": "HTTPS://AS.example.com:443/token?ignored=1#frag"})
    assert verify(proof, htu="https://as.example.com/token").htu.startswith("HTTPS://")


def test_ath_without_an_access_token_is_not_checked_rfc9449_4_2() -> None:
    """Documented decision: at the token endpoint an ``ath`` is another claim (§4.2 lets a
    proof carry more claims); it must be a string, and is returned."""
    result = verify(client().proof(claims={"ath": "whatever"}))
    assert result.ath == "whatever"


def test_a_matching_bound_jkt_passes_rfc9449_6_1() -> None:
    key = client()
    assert verify(key.proof(), jkt=key.jkt).jkt == key.jkt


def test_verifier_binds_clock_policy_and_cache() -> None:
    key = client()
    clock = FrozenClock(NOW)
    verifier = DPoPVerifier(clock=clock)
    assert verifier.verify(key.proof(), htm=HTM, htu=HTU).jkt == key.jkt
    clock.advance(61)
    with pytest.raises(InvalidDPoPProof) as caught:
        verifier.verify(key.proof(), htm=HTM, htu=HTU)
    assert caught.value.reason == "iat_too_old"
    assert allowed_algorithms(verifier.policy) == list(DEFAULT_ALGORITHMS)


# -- the key cache (DESIGN.md rule 11) --------------------------------------------------------


def test_a_returning_client_costs_no_key_import() -> None:
    key = client()
    cache = DPoPKeyCache()
    for n in range(3):
        verify(key.proof(claims={"jti": f"j{n}"}), key_cache=cache)
    assert (cache.keys.misses, cache.keys.hits) == (1, 0)
    assert (cache.headers.misses, cache.headers.hits) == (1, 2)
    # Another header (a kid) with the same key: the header is parsed, the key is not imported.
    verify(key.proof(header={"jwk": {**key.jwk, "kid": "k"}}), key_cache=cache)
    assert (cache.keys.misses, cache.keys.hits) == (1, 1)
    assert len(cache.keys) == 1
    assert len(cache.headers) == 2


def test_the_cache_is_bounded() -> None:
    cache = DPoPKeyCache(maxsize=2)
    keys = [ClientKey("ES256") for _ in range(3)]
    for key in keys:
        verify(key.proof(), key_cache=cache)
    assert len(cache.keys) == 2
    assert len(cache.headers) == 2
    verify(keys[0].proof(), key_cache=cache)  # evicted, imported again
    assert cache.keys.misses == 4
    cache.clear()
    assert len(cache.keys) == len(cache.headers) == 0
    with pytest.raises(ConfigurationError):
        DPoPKeyCache(maxsize=0)


def test_a_cached_header_is_rechecked_under_another_policy() -> None:
    cache = DPoPKeyCache()
    proof = client("RS256").proof()
    verify(proof, key_cache=cache)
    refused(proof, "alg", key_cache=cache, policy=DPoPPolicy(algorithms=("ES256",)))
    refused(proof, "weak_key", key_cache=cache, policy=DPoPPolicy(min_rsa_bits=4096))


def test_a_cached_header_still_needs_a_valid_signature_rfc9449_4_3() -> None:
    cache = DPoPKeyCache()
    key = client()
    verify(key.proof(), key_cache=cache)
    h, _p, s = key.proof().split(".")
    other_payload = b64(json.dumps({"jti": "x", "htm": HTM, "htu": HTU, "iat": NOW}).encode())
    refused(f"{h}.{other_payload}.{s}", "bad_signature", key_cache=cache)


# -- the negative matrix: one case per check of RFC 9449 §4.3 ------------------------------


def test_oversized_proof_is_refused_before_decoding_rfc9449_4_3_rfc8725_3() -> None:
    refused("a" * 8193, "too_large")
    refused(client().proof(claims={"pad": "x" * 600}), "too_large", policy=DPoPPolicy(max_size=512))


@pytest.mark.parametrize(
    "proof",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a..c",
        "!!!.b.c",
        "é.b.c",
        b64(b"not json") + "." + b64(b"{}") + ".AAAA",
        b64(b"[1,2]") + "." + b64(b"{}") + ".AAAA",
    ],
)
def test_a_proof_that_is_not_one_compact_jws_is_refused_rfc9449_4_3_item2(proof: str) -> None:
    refused(proof, "malformed")


def test_a_proof_that_is_not_a_string_is_refused_rfc9449_4_3_item2() -> None:
    refused(b"a.b.c", "malformed")  # type: ignore[arg-type]


def test_a_non_ascii_access_token_never_matches_rfc9449_7_1() -> None:
    proof = client().proof(claims={"ath": sha256_b64(TOKEN)})
    refused(proof, "ath_mismatch", access_token=TOKEN + "é")


def test_a_payload_that_is_not_a_json_object_is_refused_rfc9449_4_3_item2() -> None:
    refused(client().proof(payload_json="[1]"), "malformed")
    refused(client().proof(payload_json="{nope"), "malformed")
    refused(
        client().proof(payload_json='{"jti":"a","htm":"POST","htu":"h","iat":NaN}'), "malformed"
    )


def test_an_iat_that_overflows_is_refused_rfc9449_4_2() -> None:
    payload = '{"jti":"a","htm":"POST","htu":"https://as.example.com/token","iat":1e400}'
    refused(client().proof(payload_json=payload), "invalid_iat")


def test_a_bad_signature_segment_is_refused_rfc9449_4_3_item2() -> None:
    h, p, _ = client().proof().split(".")
    refused(f"{h}.{p}.a+b/", "malformed")


@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt", "DPOP+JWT", "application/dpop+jwt"])
def test_typ_other_than_dpop_jwt_is_refused_rfc9449_4_3_item4(typ: str | None) -> None:
    key = client()
    proof = key.proof(drop_header=("typ",)) if typ is None else key.proof(header={"typ": typ})
    refused(proof, "typ")


def test_alg_none_is_refused_rfc9449_4_3_item5() -> None:
    key = client()
    h = b64(json.dumps({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}).encode())
    p = b64(json.dumps({"jti": "j", "htm": HTM, "htu": HTU, "iat": NOW}).encode())
    refused(f"{h}.{p}.", "alg")


def test_a_mac_alg_is_refused_rfc9449_4_3_item5() -> None:
    secret = b"k" * 32
    h = b64(
        json.dumps(
            {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(secret)}}
        ).encode()
    )
    p = b64(json.dumps({"jti": "j", "htm": HTM, "htu": HTU, "iat": NOW}).encode())
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(f"{h}.{p}".encode())
    refused(f"{h}.{p}.{b64(mac.finalize())}", "alg")


def test_alg_outside_the_allow_list_is_refused_rfc9449_4_3_item5() -> None:
    refused(client("PS256").proof(), "alg", policy=DPoPPolicy(algorithms=("ES256",)))
    refused(client().proof(header={"alg": "RS384"}), "alg")
    refused(client().proof(header={"alg": 256}), "alg")
    refused(client().proof(drop_header=("alg",)), "alg")


def test_crit_is_refused_rfc7515_4_1_11() -> None:
    refused(client().proof(header={"crit": ["exp"], "exp": 1}), "crit")


def test_missing_jwk_is_refused_rfc9449_4_2() -> None:
    refused(client().proof(drop_header=("jwk",)), "missing_jwk")
    refused(client().proof(header={"jwk": "not an object"}), "missing_jwk")


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_a_private_key_in_the_jwk_is_refused_rfc9449_4_3_item7(member: str) -> None:
    key = client()
    refused(key.proof(header={"jwk": {**key.jwk, member: "AAAA"}}), "private_key")


def _jwk(**changes: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = dict(client().jwk)
    for name, value in changes.items():
        if value is None:
            jwk.pop(name)
        else:
            jwk[name] = value
    return jwk


@pytest.mark.parametrize(
    "jwk",
    [
        _jwk(kty="oct"),
        _jwk(kty=None),
        _jwk(kty="RSA"),
        _jwk(crv="P-257"),
        _jwk(crv="X25519"),
        _jwk(crv="Ed25519"),
        _jwk(x=None),
        _jwk(y=7),
        _jwk(x="AAAA"),
        _jwk(x=b64(b"\x00" * 31) + "="),
        _jwk(x=b64(b"\x01" * 32), y=b64(b"\x01" * 32)),
        _jwk(use="enc"),
        _jwk(key_ops=["sign"]),
        _jwk(key_ops="verify"),
    ],
    ids=[
        "kty-oct",
        "no-kty",
        "kty-mismatch",
        "unknown-curve",
        "ecdh-curve",
        "okp-curve-on-ec",
        "no-x",
        "y-not-string",
        "x-too-short",
        "x-padded",
        "not-on-curve",
        "use-enc",
        "key-ops-sign",
        "key-ops-not-list",
    ],
)
def test_an_unusable_jwk_is_refused_rfc9449_4_2(jwk: dict[str, Any]) -> None:
    refused(client().proof(header={"jwk": jwk}), "invalid_jwk")


def test_an_rsa_modulus_with_a_leading_zero_is_refused_rfc7518_6_3_1_1() -> None:
    key = client("RS256")
    n = base64.urlsafe_b64decode(key.jwk["n"] + "==")
    refused(key.proof(header={"jwk": {**key.jwk, "n": b64(b"\x00" + n)}}), "invalid_jwk")


def test_a_jwk_alg_other_than_the_header_alg_is_refused_rfc9449_4_2() -> None:
    key = client()
    refused(key.proof(header={"jwk": {**key.jwk, "alg": "ES384"}}), "jwk_alg")


def test_a_short_rsa_key_is_refused_rfc9449_4_3_item5() -> None:
    refused(weak_rsa_client().proof(), "weak_key")


@pytest.mark.parametrize(
    ("alg", "key_alg"),
    [
        ("ES384", "ES256"),
        ("RS256", "ES256"),
        ("EdDSA", "ES256"),
        ("ES256", "EdDSA"),
        ("ES256", "PS256"),
    ],
)
def test_a_key_that_does_not_fit_the_alg_is_refused_rfc9449_4_3_item5(
    alg: str, key_alg: str
) -> None:
    refused(client(key_alg).proof(header={"alg": alg}), "key_alg")


def test_a_signature_by_another_key_is_refused_rfc9449_4_3_item6() -> None:
    proof = client().proof()
    h, p, _ = proof.split(".")
    other = ClientKey("ES256")
    forged = f"{h}.{p}.{b64(other.sign(f'{h}.{p}'.encode()))}"
    refused(forged, "bad_signature")


def test_a_tampered_payload_or_truncated_signature_is_refused_rfc9449_4_3_item6() -> None:
    h, p, s = client().proof().split(".")
    payload = b64(json.dumps({"jti": "jti-1", "htm": "GET", "htu": HTU, "iat": NOW}).encode())
    refused(f"{h}.{payload}.{s}", "bad_signature")
    raw = base64.urlsafe_b64decode(s + "==")
    refused(f"{h}.{p}.{b64(raw[:-3])}", "bad_signature")
    refused(f"{h}.{p}.", "bad_signature")


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_a_missing_required_claim_is_refused_rfc9449_4_3_item3(claim: str) -> None:
    refused(client().proof(drop_claims=(claim,)), f"missing_{claim}")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("jti", 1),
        ("htm", ["POST"]),
        ("htu", {"url": HTU}),
        ("iat", "1800000000"),
        ("iat", True),
        ("ath", 1),
        ("nonce", 1),
    ],
)
def test_a_claim_of_the_wrong_type_is_refused_rfc9449_4_2(claim: str, value: Any) -> None:
    proof = client().proof(claims={claim: value})
    refused(proof, f"invalid_{claim}")


@pytest.mark.parametrize("htm", ["post", "GET", "POST "])
def test_htm_must_match_exactly_rfc9449_4_3_item8(htm: str) -> None:
    refused(client().proof(claims={"htm": htm}), "htm_mismatch")


@pytest.mark.parametrize(
    "htu",
    [
        "https://user@as.example.com/token",
        "/token",
        "as.example.com/token",
        "ftp://as.example.com/token",
    ],
)
def test_an_unusable_htu_is_refused_rfc9449_4_3_item9(htu: str) -> None:
    refused(client().proof(claims={"htu": htu}), "invalid_htu")


@pytest.mark.parametrize(
    "htu",
    [
        "https://as.example.com/token/",
        "https://as.example.com/Token",
        "http://as.example.com/token",
        "https://as.example.com:8443/token",
        "https://evil.example.com/token",
        "https://as.example.com/a/../token",
    ],
)
def test_htu_for_another_url_is_refused_rfc9449_4_3_item9(htu: str) -> None:
    refused(client().proof(claims={"htu": htu}), "htu_mismatch")


def test_a_server_url_that_cannot_be_normalised_matches_nothing_rfc9449_4_3_item9() -> None:
    refused(client().proof(), "htu_mismatch", htu="https://as.example.com/to ken")


def test_a_stale_proof_is_refused_rfc9449_4_3_item11() -> None:
    refused(client().proof(claims={"iat": NOW - 61}), "iat_too_old")


def test_a_proof_from_the_future_is_refused_rfc9449_4_3_item11() -> None:
    refused(client().proof(claims={"iat": NOW + 61}), "iat_in_future")


@pytest.mark.parametrize("jti", ["", "x" * 257, "é" * 129])
def test_a_jti_empty_or_over_256_bytes_is_refused_rfc9449_4_2_11_1(jti: str) -> None:
    refused(client().proof(claims={"jti": jti}), "jti_too_long")


def test_a_jti_of_256_bytes_passes_rfc9449_4_2() -> None:
    assert verify(client().proof(claims={"jti": "é" * 128})).jti == "é" * 128


def test_ath_is_required_with_an_access_token_rfc9449_4_3_item12() -> None:
    refused(client().proof(), "missing_ath", access_token=TOKEN)


def test_ath_for_another_token_is_refused_rfc9449_4_3_item12() -> None:
    proof = client().proof(claims={"ath": sha256_b64("another-token")})
    refused(proof, "ath_mismatch", access_token=TOKEN)
    refused(client().proof(claims={"ath": "é"}), "ath_mismatch", access_token=TOKEN)


def test_a_key_other_than_the_bound_one_is_refused_rfc9449_4_3_item12() -> None:
    refused(client().proof(), "jkt_mismatch", jkt=client("ES384").jkt)


def test_a_nonce_is_required_when_the_server_asks_rfc9449_8() -> None:
    nonces = HMACNonces([b"s" * 32], clock=FrozenClock(NOW))
    with pytest.raises(UseDPoPNonce) as caught:
        verify(client().proof(), nonces=nonces)
    assert caught.value.reason == "missing_nonce"
    assert caught.value.error == "use_dpop_nonce"
    assert caught.value.headers["DPoP-Nonce"] == nonces.issue()
    assert nonces.check(caught.value.nonce)


def test_an_unknown_or_stale_nonce_gets_a_fresh_one_rfc9449_8() -> None:
    clock = FrozenClock(NOW)
    nonces = HMACNonces([b"s" * 32], clock=clock, window_seconds=60)
    stale = nonces.issue()
    clock.advance(120)
    for bad in ("made-up", stale):
        with pytest.raises(UseDPoPNonce) as caught:
            verify(
                client().proof(claims={"nonce": bad, "iat": NOW + 120}), nonces=nonces, clock=clock
            )
        assert caught.value.reason == "invalid_nonce"
        assert caught.value.nonce == nonces.issue() != stale


def test_a_valid_nonce_passes_rfc9449_8() -> None:
    nonces = HMACNonces([b"s" * 32], clock=FrozenClock(NOW))
    nonce = nonces.issue()
    assert verify(client().proof(claims={"nonce": nonce}), nonces=nonces).nonce == nonce


def test_the_nonce_is_checked_last_rfc9449_8() -> None:
    """A proof that fails another check never earns a nonce challenge."""
    nonces = HMACNonces([b"s" * 32], clock=FrozenClock(NOW))
    refused(client().proof(claims={"htm": "GET"}), "htm_mismatch", nonces=nonces)


def test_a_nonce_without_a_nonce_source_is_ignored_rfc9449_8() -> None:
    assert verify(client().proof(claims={"nonce": "anything"})).nonce == "anything"


def test_a_replayed_proof_is_refused_once_claimed_rfc9449_11_1() -> None:
    store = MemoryReplayStore()
    proof = client().proof()
    first = verify(proof)
    claim_replay(first, store)
    assert store.records == {first.replay_key: first.expires_at}
    second = verify(proof)  # verification itself never claims (DESIGN.md rule 7)
    with pytest.raises(InvalidDPoPProof) as caught:
        claim_replay(second, store)
    assert caught.value.reason == "replayed"


def test_the_replay_key_is_per_key_rfc9449_11_1() -> None:
    """Two clients may pick the same jti: the replay key includes the thumbprint."""
    a = verify(client("ES256").proof())
    b = verify(client("ES384").proof())
    assert a.jti == b.jti
    assert a.replay_key != b.replay_key


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "missing"),
        ([""], "missing"),
        (["a.b.c", "d.e.f"], "multiple_headers"),
        (["a.b.c, d.e.f"], "multiple_headers"),
    ],
)
def test_exactly_one_dpop_header_rfc9449_4_3_item1(values: list[str], reason: str) -> None:
    with pytest.raises(InvalidDPoPProof) as caught:
        single_dpop_header(values)
    assert caught.value.reason == reason


def test_the_one_dpop_header_is_returned_trimmed_rfc9449_4_3_item1() -> None:
    assert single_dpop_header([" a.b.c\t"]) == "a.b.c"


def test_error_descriptions_never_echo_the_proof() -> None:
    """Attacker-chosen values never reach error_description (RFC 6749 §5.2 charset)."""
    err = refused(client().proof(claims={"htm": 'PO"ST\\'}), "htm_mismatch")
    assert err.description is not None
    assert '"' not in err.description


# -- policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"algorithms": ()},
        {"algorithms": ("HS256",)},
        {"algorithms": ("none",)},
        {"algorithms": ("ES256", "XX1")},
        {"max_age": 0},
        {"max_future": -1},
        {"max_size": 0},
        {"min_rsa_bits": 1024},
    ],
)
def test_a_bad_policy_is_a_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DPoPPolicy(**options)


def test_default_policy() -> None:
    policy = DPoPPolicy()
    assert policy.algorithms == ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
    assert (policy.max_age, policy.max_future, policy.max_size) == (60, 60, 8192)
    assert policy.replay_ttl == 121
    assert DPoPPolicy(algorithms=["ES256"]).algorithms == ("ES256",)  # type: ignore[arg-type]


# -- the builder (our own client side) ------------------------------------------------------


@pytest.mark.parametrize("kind", ["P-256", "P-384", "RSA", "Ed25519"])
def test_build_proof_round_trip(kind: str) -> None:
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    key: Any
    if kind == "RSA":
        key = RSAKey.generate_key(2048)
    elif kind == "Ed25519":
        key = OKPKey.generate_key("Ed25519")
    else:
        key = ECKey.generate_key(kind)
    clock = FrozenClock(NOW)
    proof = build_proof(
        key,
        "GET",
        "https://rs.example.com/api/items?page=2#top",
        access_token=TOKEN,
        nonce="n-1",
        clock=clock,
    )
    h, p, _ = proof.split(".")
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    assert header["typ"] == "dpop+jwt"
    assert not {"d", "p", "q", "dp", "dq", "qi", "kid"} & set(header["jwk"])
    assert claims["htu"] == "https://rs.example.com/api/items"
    assert claims["iat"] == NOW
    assert claims["ath"] == sha256_b64(TOKEN)
    assert claims["nonce"] == "n-1"
    assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) == 16
    result = verify(
        proof,
        htm="GET",
        htu="https://rs.example.com/api/items",
        access_token=TOKEN,
        jkt=key.thumbprint(),
    )
    assert result.jkt == key.thumbprint()


def test_build_proof_options_and_refusals() -> None:
    from joserfc.jwk import ECKey, OctKey

    key = ECKey.generate_key("P-256")
    proof = build_proof(key, HTM, HTU, jti="fixed", iat=NOW - 5, extra_claims={"x": 1})
    assert verify(proof).jti == "fixed"
    with pytest.raises(ValueError, match="private"):
        build_proof(ECKey.import_key(key.as_dict(private=False)), HTM, HTU)
    with pytest.raises(ValueError, match="asymmetric"):
        build_proof(key, HTM, HTU, alg="HS256")
    with pytest.raises(ValueError, match="asymmetric"):
        build_proof(OctKey.generate_key(256), HTM, HTU)


def test_deeply_nested_json_is_malformed_not_a_crash_rfc9449_4_3() -> None:
    """A signed proof whose payload (or header) nests beyond the parser's recursion limit is
    ``invalid_dpop_proof``, never an escaping RecursionError (a 500): the key is the
    attacker's own, so the signature verifies."""
    nested = "[" * 2000 + "]" * 2000  # deeper than the parser recurses, within the size cap
    refused(client().proof(payload_json=nested), "malformed")
    header = json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": client().jwk})
    deep_header = header[:-1] + ', "x": ' + "[" * 1500 + "]" * 1500 + "}"
    with pytest.raises(InvalidDPoPProof) as caught:
        verify(client().proof(header_json=deep_header))
    assert caught.value.reason in ("malformed", "too_large")
