"""Keys and the keystore (DESIGN.md D5): RFC 7638 / RFC 8037 vectors, the file format, the
active-signer rule, rotation, and the public JWK Set."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc import jws
from joserfc.errors import BadSignatureError, SecurityWarning

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.encoding import b64url_decode, b64url_encode
from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.core.keys import (
    FileKeystore,
    KeyAlgorithmMismatch,
    Keystore,
    StaticKeystore,
    generate_development_keystore,
    generate_key,
    private_signer,
    public_jwk,
)
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter, AccessTokenVerifier

FIXTURES = Path(__file__).parent.parent / "fixtures"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "rfc_jose_vectors.json").read_text())
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k", "active"}


def _write_jwks(path: Path, keys: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"keys": keys}))
    return path


@pytest.fixture(scope="module")
def rsa_jwk() -> dict[str, Any]:
    return dict(generate_key("RS256"))


@pytest.fixture(scope="module")
def ps_jwk() -> dict[str, Any]:
    return dict(generate_key("PS256"))


# --- RFC vectors ----------------------------------------------------------------------------


def test_kid_is_the_rfc7638_3_1_thumbprint() -> None:
    vector = VECTORS["rfc7638_3_1"]
    jwk = {k: vector["jwk"][k] for k in ("kty", "n", "e")}
    assert public_jwk(jwk)["kid"] == vector["thumbprint"]


def test_a_key_file_may_name_its_kid_rfc7517_4_5() -> None:
    assert public_jwk(VECTORS["rfc7638_3_1"]["jwk"])["kid"] == "2011-04-29"


def test_ed25519_thumbprint_and_signature_rfc8037_appendix_a() -> None:
    vector = VECTORS["rfc8037_a"]
    signer = private_signer(vector["jwk"])
    assert signer.kid == vector["thumbprint"]
    assert signer.alg == "EdDSA"
    header, payload, signature = vector["jws"].split(".")
    # Ed25519 is deterministic: our signer reproduces the RFC's signature exactly (A.4) ...
    assert b64url_encode(signer.sign(f"{header}.{payload}".encode())) == signature
    # ... and an independent check with `cryptography` accepts it (A.5).
    public = ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(vector["jwk"]["x"]))
    public.verify(b64url_decode(signature), f"{header}.{payload}".encode())
    assert b64url_decode(payload).decode() == vector["payload"]


def test_es256_signature_of_rfc7515_a3_verifies_with_cryptography() -> None:
    vector = VECTORS["rfc7515_a3"]
    header, payload, signature = vector["jws"].split(".")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(vector["jwk"]["x"]), "big"),
        int.from_bytes(b64url_decode(vector["jwk"]["y"]), "big"),
        ec.SECP256R1(),
    )
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    numbers.public_key().verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        numbers.public_key().verify(der, f"{header}.{payload}x".encode(), ec.ECDSA(hashes.SHA256()))


def test_rfc7515_a3_verifies_with_joserfc_and_the_keystores_imported_key() -> None:
    vector = VECTORS["rfc7515_a3"]
    public = {k: vector["jwk"][k] for k in ("kty", "crv", "x", "y")}
    store = StaticKeystore([], published=[public])
    kid = store.jwks()["keys"][0]["kid"]
    key = store.verification_key(kid, "ES256")
    assert key is not None
    verified = jws.deserialize_compact(vector["jws"], key, algorithms=["ES256"])
    assert verified.payload.decode() == vector["payload"]
    header, payload, signature = vector["jws"].split(".")
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(f"{header}.{payload}.{signature[::-1]}", key, algorithms=["ES256"])


def test_rfc8037_a4_verifies_with_joserfc_and_the_keystores_imported_key() -> None:
    vector = VECTORS["rfc8037_a"]
    store = StaticKeystore([], published=[{k: vector["jwk"][k] for k in ("kty", "crv", "x")}])
    key = store.verification_key(vector["thumbprint"], "EdDSA")
    assert key is not None
    # joserfc's registry warns on the EdDSA name (RFC 9864); our decoder bypasses the warning.
    with pytest.warns(SecurityWarning, match="RFC 9864"):
        verified = jws.deserialize_compact(vector["jws"], key, algorithms=["EdDSA"])
    assert verified.payload.decode() == vector["payload"]


def test_es256_signature_of_our_signer_verifies_with_cryptography_rfc7518_3_4() -> None:
    signer = private_signer(VECTORS["rfc7515_a3"]["jwk"])
    signature = signer.sign(b"abc.def")
    assert len(signature) == 64  # R || S, not DER
    jwk = signer.public_jwk
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(jwk["x"]), "big"),
        int.from_bytes(b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public.verify(der, b"abc.def", ec.ECDSA(hashes.SHA256()))


# --- the file keystore ----------------------------------------------------------------------


def test_jwks_has_only_public_members_rfc7517_5(
    tmp_path: Path, rsa_jwk: dict[str, Any], ps_jwk: dict[str, Any]
) -> None:
    ec_jwk = dict(generate_key("ES256"), active=True)
    ed_jwk = dict(generate_key("EdDSA"))
    store = FileKeystore(_write_jwks(tmp_path / "k.json", [ec_jwk, ed_jwk, rsa_jwk, ps_jwk]))
    document = store.jwks()
    assert [k["kid"] for k in document["keys"]] == [
        ec_jwk["kid"],
        ed_jwk["kid"],
        rsa_jwk["kid"],
        ps_jwk["kid"],
    ]
    for jwk in document["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["use"] == "sig"
    assert set(document["keys"][0]) == {"kty", "kid", "use", "alg", "crv", "x", "y"}
    assert set(document["keys"][1]) == {"kty", "kid", "use", "alg", "crv", "x"}
    assert set(document["keys"][2]) == {"kty", "kid", "use", "alg", "n", "e"}
    assert store.algorithms == {"ES256", "EdDSA", "RS256", "PS256"}
    # The document is a fresh copy: a caller cannot change what the keystore publishes.
    document["keys"][0]["d"] = "oops"  # type: ignore[typeddict-unknown-key]
    assert "d" not in store.jwks()["keys"][0]


def test_first_key_of_each_alg_is_active_and_the_others_stay_published(tmp_path: Path) -> None:
    first, second = generate_key("ES256"), generate_key("ES256")
    store = FileKeystore(_write_jwks(tmp_path / "k.json", [first, second]))
    assert store.signer().kid == first["kid"]
    assert store.signer("ES256").kid == first["kid"]
    assert [k["kid"] for k in store.jwks()["keys"]] == [first["kid"], second["kid"]]
    assert store.verification_key(second["kid"], "ES256") is not None


def test_the_key_marked_active_signs(tmp_path: Path) -> None:
    first, second = generate_key("ES256"), dict(generate_key("ES256"), active=True)
    store = FileKeystore(_write_jwks(tmp_path / "k.json", [first, second]))
    assert store.signer().kid == second["kid"]
    assert {k["kid"] for k in store.jwks()["keys"]} == {first["kid"], second["kid"]}


def test_two_keys_marked_active_for_one_alg_are_refused(tmp_path: Path) -> None:
    keys = [dict(generate_key("ES256"), active=True) for _ in range(2)]
    with pytest.raises(ConfigurationError, match="mark exactly one"):
        FileKeystore(_write_jwks(tmp_path / "k.json", keys))


def test_a_public_only_key_is_published_but_never_signs(tmp_path: Path) -> None:
    retired = generate_key("ES256")
    retired_public = {k: v for k, v in retired.items() if k != "d"}
    active = generate_key("ES256")
    store = FileKeystore(_write_jwks(tmp_path / "k.json", [retired_public, active]))
    assert store.signer().kid == active["kid"]
    assert store.verification_key(retired["kid"], "ES256") is not None
    with pytest.raises(ConfigurationError, match="no private part"):
        FileKeystore(_write_jwks(tmp_path / "p.json", [dict(retired_public, active=True)]))


def test_rsa_smaller_than_2048_bits_is_refused_rfc7518_3_3(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  (the point)
    pem = small.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "small.pem").write_bytes(pem)
    with pytest.raises(ConfigurationError, match="1024 bits refused"):
        FileKeystore(tmp_path / "small.pem")
    numbers = small.public_key().public_numbers()
    small_jwk = {
        "kty": "RSA",
        "n": b64url_encode(numbers.n.to_bytes(128, "big")),
        "e": "AQAB",
    }
    with pytest.raises(ConfigurationError, match="1024 bits refused"):
        FileKeystore(_write_jwks(tmp_path / "k.json", [small_jwk]))
    with pytest.raises(ConfigurationError, match="2048"):
        generate_key("RS256", rsa_bits=1024)


def test_pem_files_load_with_thumbprint_kids(tmp_path: Path, rsa_jwk: dict[str, Any]) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    for name, key in (("ec.pem", ec_key), ("ed.pem", ed_key)):
        (tmp_path / name).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    store = FileKeystore(
        tmp_path / "ec.pem",
        tmp_path / "ed.pem",
        _write_jwks(tmp_path / "rsa.json", [rsa_jwk]),
    )
    assert store.algorithms == {"ES256", "EdDSA", "RS256"}
    ec_signer = store.signer("ES256")
    assert ec_signer.kid == public_jwk(ec_signer.public_jwk)["kid"]  # the RFC 7638 thumbprint
    signature = store.signer("EdDSA").sign(b"x")
    ed_key.public_key().verify(signature, b"x")


def test_a_pem_file_can_be_assigned_ps256(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    store = FileKeystore(str(path), pem_algorithms={f"{tmp_path}/./rsa.pem": "PS256"})
    assert store.algorithms == {"PS256"}
    with pytest.raises(ConfigurationError, match="not loaded"):
        FileKeystore(path, pem_algorithms={"other.pem": "PS256"})
    signature = store.signer().sign(b"x")
    key.public_key().verify(
        signature,
        b"x",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([{"kty": "oct", "k": "c2VjcmV0"}], "unsupported key type"),
        ([{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}], "unsupported key type"),
        ([{"kty": "EC", "crv": "P-256", "alg": "HS256", "x": "AA", "y": "AA"}], "unsupported"),
        ([{"kty": "RSA", "alg": "ES256", "n": "AQAB", "e": "AQAB"}], "does not fit"),
        ([{"kty": "EC", "crv": "P-256", "use": "enc", "x": "AA", "y": "AA"}], "use"),
        ([{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}], "cannot import"),
        (["not a key"], "JSON object"),
        ([], "JWK Set"),
    ],
)
def test_bad_key_files_name_the_problem(tmp_path: Path, keys: list[Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FileKeystore(_write_jwks(tmp_path / "k.json", keys))


def test_unreadable_or_garbled_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        FileKeystore(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        FileKeystore(tmp_path / "bad.json")
    (tmp_path / "bad.pem").write_text("-----BEGIN NOTHING-----")
    with pytest.raises(ConfigurationError, match="neither"):
        FileKeystore(tmp_path / "bad.pem")
    with pytest.raises(ConfigurationError, match="at least one"):
        FileKeystore()


def test_duplicate_kids_are_refused(tmp_path: Path) -> None:
    key = generate_key("ES256")
    with pytest.raises(ConfigurationError, match="published twice"):
        FileKeystore(_write_jwks(tmp_path / "k.json", [key, dict(key)]))


# --- lookups --------------------------------------------------------------------------------


def test_verification_key_lookup_by_kid_and_alg_rfc8725_3_1() -> None:
    signer = private_signer(generate_key("ES256"))
    store = StaticKeystore([signer])
    key = store.verification_key(signer.kid, "ES256")
    assert key is not None
    assert not key.is_private
    assert store.verification_key(signer.kid, "ES256") is key  # imported once, cached
    assert store.verification_key("unknown", "ES256") is None
    with pytest.raises(KeyAlgorithmMismatch):
        store.verification_key(signer.kid, "RS256")


def test_a_keystore_without_rsa_names_the_fix_for_id_tokens_oidc_core_15_1() -> None:
    store: Keystore = StaticKeystore([private_signer(generate_key("ES256"))])
    assert store.signer().alg == "ES256"
    with pytest.raises(ConfigurationError, match=r"RS256.*id_token_signed_response_alg"):
        store.signer("RS256")


def test_the_default_signer_is_es256_else_the_first_key(rsa_jwk: dict[str, Any]) -> None:
    ed = private_signer(generate_key("EdDSA"))
    rs = private_signer(rsa_jwk)
    assert StaticKeystore([ed, rs]).signer().alg == "EdDSA"
    es = private_signer(generate_key("ES256"))
    assert StaticKeystore([ed, rs, es]).signer().alg == "ES256"
    with pytest.raises(ConfigurationError, match="no active"):
        StaticKeystore([]).signer()


def test_two_active_signers_for_one_alg_are_refused() -> None:
    a, b = (private_signer(generate_key("ES256")) for _ in range(2))
    with pytest.raises(ConfigurationError, match="two active ES256"):
        StaticKeystore([a, b])


def test_signer_repr_does_not_show_the_private_key() -> None:
    jwk = generate_key("ES256")
    signer = private_signer(jwk)
    assert jwk["d"] not in repr(signer)
    assert "d" not in signer.public_jwk
    assert jwk["d"] not in repr(StaticKeystore([signer]))


def test_development_keystore_warns_that_it_is_per_process_d19(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pyramid_attesto.keys"):
        store = generate_development_keystore(("ES256",))
    assert store.ephemeral
    assert store.algorithms == {"ES256"}
    assert any("per-process" in r.getMessage() for r in caplog.records)


def test_generated_keys_round_trip_through_a_key_file(tmp_path: Path) -> None:
    jwk = generate_key("EdDSA")
    assert set(jwk) == {"kty", "crv", "x", "d", "kid", "use", "alg"}
    store = FileKeystore(_write_jwks(tmp_path / "k.json", [dict(jwk)]))
    assert store.signer("EdDSA").kid == jwk["kid"]


class _KmsLikeSigner:
    """A Signer whose private key the keystore never sees, as with a KMS (DESIGN.md D5)."""

    alg = "ES256"

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        numbers = self._key.public_key().public_numbers()
        self.public_jwk = public_jwk(
            {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url_encode(numbers.x.to_bytes(32, "big")),
                "y": b64url_encode(numbers.y.to_bytes(32, "big")),
            }
        )
        self.kid = self.public_jwk["kid"]

    def sign(self, signing_input: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_a_custody_signer_signs_tokens_that_verify_d5() -> None:
    signer = _KmsLikeSigner()
    store = StaticKeystore([signer])
    assert store.jwks()["keys"][0]["kid"] == signer.kid
    clock = FrozenClock()
    claims = AccessTokenClaims(subject="usr_1", client_id="c", audience="https://rs.example/")
    token = AccessTokenMinter(store, issuer="https://as.example", clock=clock).mint(claims).token
    verifier = AccessTokenVerifier(
        store, issuer="https://as.example", audience="https://rs.example/", clock=clock
    )
    assert verifier.verify(token).kid == signer.kid


def test_a_signer_whose_alg_does_not_fit_its_key_is_refused() -> None:
    signer = _KmsLikeSigner()
    signer.alg = "RS256"  # type: ignore[assignment]
    with pytest.raises(ConfigurationError, match="does not fit"):
        StaticKeystore([signer])


def test_key_ops_must_allow_signing_rfc7517_4_3(tmp_path: Path) -> None:
    key = dict(generate_key("ES256"), key_ops=["verify"])
    with pytest.raises(ConfigurationError, match="key_ops"):
        FileKeystore(_write_jwks(tmp_path / "k.json", [key]))
    key["key_ops"] = ["sign", "verify"]
    assert FileKeystore(_write_jwks(tmp_path / "k.json", [key])).signer().kid == key["kid"]
    public = {k: v for k, v in key.items() if k != "d"}
    public["key_ops"] = ["sign"]
    with pytest.raises(ConfigurationError, match="verify"):
        FileKeystore(_write_jwks(tmp_path / "p.json", [public]))
