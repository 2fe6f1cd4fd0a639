"""Mutual TLS (RFC 8705), client certificates from proxies (RFC 9440, SSL_CLIENT_CERT) and
DESIGN.md D14. Certificates are generated here with ``cryptography``."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from functools import cache
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import (
    InvalidClient,
    InvalidClientMetadata,
    InvalidRequest,
    InvalidToken,
)
from pyramid_attesto.core.mtls import (
    CertificateTrust,
    ClientCertificate,
    certificate_thumbprint,
    check_binding,
    check_self_signed_tls_client_auth,
    check_tls_client_auth,
    load_certificate,
    parse_client_cert_chain_header,
    parse_client_cert_header,
    parse_ssl_client_cert,
    ssl_client_verify_succeeded,
    validate_tls_client_auth_metadata,
)

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
SUBJECT_DN = "O=Example Corp,CN=client-1"  # RFC 4514 order: last RDN first


def _name(**attrs: str) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def _issue(
    subject: x509.Name,
    key: Any,
    issuer: x509.Name,
    issuer_key: Any,
    *,
    ca: bool = False,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    digest = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, digest)


class PKI:
    def __init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = _name(CN="Test Root CA")
        self.ca = _issue(self.ca_name, self.ca_key, self.ca_name, self.ca_key, ca=True)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate_name = _name(CN="Test Issuing CA")
        self.intermediate = _issue(
            self.intermediate_name, self.intermediate_key, self.ca_name, self.ca_key, ca=True
        )
        self.client_key = ec.generate_private_key(ec.SECP256R1())
        self.client = _issue(
            _name(CN="client-1", O="Example Corp"),
            self.client_key,
            self.intermediate_name,
            self.intermediate_key,
            sans=[
                x509.DNSName("client-1.example.com"),
                x509.UniformResourceIdentifier("https://client-1.example.com/id"),
                x509.IPAddress(ipaddress.ip_address("2001:db8::7")),
                x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
                x509.RFC822Name("ops@client-1.example.com"),
            ],
        )
        self.self_signed_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = _name(CN="self-signed client")
        self.self_signed = _issue(name, self.self_signed_key, name, self.self_signed_key)
        self.bare_key = ec.generate_private_key(ec.SECP256R1())
        self.bare = _issue(_name(CN="bare"), self.bare_key, self.ca_name, self.ca_key)


@cache
def pki() -> PKI:
    return PKI()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def validated(cert: x509.Certificate) -> ClientCertificate:
    return ClientCertificate.from_der(der(cert), chain_validated=True, validated_by="proxy")


def header_value(cert: x509.Certificate) -> str:
    return ":" + base64.b64encode(der(cert)).decode() + ":"


def invalid_certificate(call: Any, *args: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        call(*args)
    assert caught.value.reason == "invalid_certificate"
    assert caught.value.error == "invalid_request"


# -- x5t#S256 ----------------------------------------------------------------------------------


def test_thumbprint_is_sha256_of_der_rfc8705_3_1() -> None:
    cert = pki().client
    expected = b64url_sha256(der(cert))
    assert certificate_thumbprint(der(cert)) == expected
    assert certificate_thumbprint(pem(cert)) == expected
    assert certificate_thumbprint(pem(cert).encode()) == expected
    assert certificate_thumbprint(cert) == expected
    assert ClientCertificate.from_der(der(cert)).thumbprint == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a certificate",
        b"\x30\x03\x02\x01\x01",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        b"\x30" * 40000,
    ],
)
def test_unparseable_certificates_get_no_thumbprint_rfc8705_3_1(data: bytes | str) -> None:
    invalid_certificate(certificate_thumbprint, data)
    invalid_certificate(load_certificate, data)


def test_client_certificate_value() -> None:
    cert = ClientCertificate.from_der(der(pki().client))
    assert cert.der == der(pki().client)
    assert cert.certificate == pki().client
    assert (cert.chain_validated, cert.validated_by) == (False, None)
    marked = cert.validated("proxy")
    assert (marked.chain_validated, marked.validated_by) == (True, "proxy")
    assert not cert.chain_validated  # frozen: a new value
    with pytest.raises(ValueError, match="validated_by"):
        ClientCertificate.from_der(der(pki().client), chain_validated=True)


# -- sources: RFC 9440 Client-Cert, SSL_CLIENT_CERT (DESIGN.md D14) --------------------------


def test_client_cert_header_rfc9440_2_2() -> None:
    cert = pki().client
    assert parse_client_cert_header(header_value(cert)) == der(cert)
    assert parse_client_cert_header(" \t" + header_value(cert) + " ") == der(cert)
    unpadded = ":" + base64.b64encode(der(cert)).decode().rstrip("=") + ":"
    assert parse_client_cert_header(unpadded) == der(cert)  # RFC 8941 §4.2.7
    from_header = ClientCertificate.from_client_cert_header(
        header_value(cert), chain_validated=True, validated_by="proxy"
    )
    assert from_header.thumbprint == b64url_sha256(der(cert))
    assert from_header.validated_by == "proxy"


@pytest.mark.parametrize(
    "make",
    [
        lambda c: base64.b64encode(der(c)).decode(),  # no colons
        lambda c: ":" + base64.b64encode(der(c)).decode(),  # one colon
        lambda c: ":" + base64.urlsafe_b64encode(der(c)).decode() + ":",  # base64url alphabet
        lambda c: header_value(c) + ";validated=?1",  # parameters
        lambda c: header_value(c) + ", " + header_value(c),  # a list
        lambda c: "::",  # empty
        lambda c: ":" + base64.b64encode(b"junk that is no certificate").decode() + ":",
        lambda c: ":" + base64.b64encode(der(c)).decode()[:-8] + ":",  # truncated DER
        lambda c: ":" + "A" * 30000 + ":",  # too large
        lambda c: '"' + base64.b64encode(der(c)).decode() + '"',  # an sf-string
    ],
    ids=[
        "bare",
        "one-colon",
        "base64url",
        "params",
        "list",
        "empty",
        "junk",
        "truncated",
        "huge",
        "string",
    ],
)
def test_malformed_client_cert_header_is_refused_rfc9440_2_2(make: Any) -> None:
    invalid_certificate(parse_client_cert_header, make(pki().client))


def test_client_cert_chain_header_rfc9440_2_3() -> None:
    p = pki()
    value = f"{header_value(p.intermediate)}, {header_value(p.ca)}"
    assert parse_client_cert_chain_header(value) == [der(p.intermediate), der(p.ca)]
    assert parse_client_cert_chain_header("") == []
    invalid_certificate(parse_client_cert_chain_header, header_value(p.ca) + ", :AAAA:")


@pytest.mark.parametrize(
    "make",
    [
        pem,  # Apache mod_ssl SSL_CLIENT_CERT
        lambda c: quote(pem(c)),  # nginx $ssl_client_escaped_cert
        lambda c: pem(c).replace("\n", "\n\t").rstrip("\t"),  # nginx $ssl_client_cert
        lambda c: pem(c).replace("\n", " "),  # line breaks flattened by a proxy
        lambda c: "\n" + pem(c).replace("\n", "\r\n") + "\n",
    ],
    ids=["apache", "nginx-escaped", "nginx-tabs", "spaces", "crlf"],
)
def test_ssl_client_cert_pem_forms(make: Any) -> None:
    cert = pki().client
    assert parse_ssl_client_cert(make(cert)) == der(cert)
    assert ClientCertificate.from_pem(make(cert)).thumbprint == b64url_sha256(der(cert))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "(null)",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_malformed_ssl_client_cert_is_refused(value: str) -> None:
    invalid_certificate(parse_ssl_client_cert, value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("SUCCESS", True),
        ("NONE", False),
        ("GENEROUS", False),
        ("FAILED:expired", False),
        (None, False),
        ("success", False),
    ],
)
def test_ssl_client_verify(value: str | None, ok: bool) -> None:
    assert ssl_client_verify_succeeded(value) is ok


# -- chain validation against trust anchors (DESIGN.md D14) ----------------------------------


def test_a_chain_to_a_trust_anchor_is_validated_d14() -> None:
    p = pki()
    trust = CertificateTrust([p.ca], clock=FrozenClock(NOW.timestamp()))
    result = trust.validate(ClientCertificate.from_der(der(p.client)), [p.intermediate])
    assert (result.chain_validated, result.validated_by) == (True, "trust_anchors")


@pytest.mark.parametrize(
    ("case", "when"),
    [
        ("self-signed", NOW),
        ("missing-intermediate", NOW),
        ("expired", NOW + 60 * DAY),
        ("not-yet", NOW - 7 * DAY),
    ],
)
def test_an_untrusted_chain_is_refused_d14(case: str, when: datetime.datetime) -> None:
    p = pki()
    trust = CertificateTrust([p.ca], clock=FrozenClock(when.timestamp()))
    cert = p.self_signed if case == "self-signed" else p.client
    intermediates = [p.intermediate] if case in ("expired", "not-yet") else []
    with pytest.raises(InvalidClient) as caught:
        trust.validate(ClientCertificate.from_der(der(cert)), intermediates)
    assert caught.value.reason == "untrusted_chain"


def test_trust_needs_an_anchor() -> None:
    with pytest.raises(ValueError, match="anchor"):
        CertificateTrust([], clock=FrozenClock())


# -- tls_client_auth (RFC 8705 §2.1) --------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        {"tls_client_auth_subject_dn": SUBJECT_DN},
        {"tls_client_auth_san_dns": "client-1.example.com"},
        {"tls_client_auth_san_dns": "CLIENT-1.Example.com"},
        {"tls_client_auth_san_uri": "https://client-1.example.com/id"},
        {"tls_client_auth_san_ip": "2001:db8::7"},
        {"tls_client_auth_san_ip": "2001:0db8:0:0:0:0:0:0007"},
        {"tls_client_auth_san_ip": "192.0.2.7"},
        {"tls_client_auth_san_email": "ops@client-1.example.com"},
    ],
)
def test_tls_client_auth_matches_rfc8705_2_1_2(metadata: dict[str, str]) -> None:
    check_tls_client_auth(validated(pki().client), {"client_id": "c1", **metadata})


@pytest.mark.parametrize(
    "metadata",
    [
        {"tls_client_auth_subject_dn": "CN=client-1,O=Example Corp"},  # RDN order matters
        {"tls_client_auth_subject_dn": "O=Example Corp,CN=Client-1"},  # exact: case matters
        {"tls_client_auth_subject_dn": "O=Example Corp,CN=client-2"},
        {"tls_client_auth_subject_dn": "CN=client-1"},
        {"tls_client_auth_san_dns": "client-2.example.com"},
        {"tls_client_auth_san_dns": "*.example.com"},
        {"tls_client_auth_san_dns": "example.com"},
        {"tls_client_auth_san_uri": "https://client-1.example.com/ID"},
        {"tls_client_auth_san_uri": "https://client-1.example.com/id/"},
        {"tls_client_auth_san_ip": "2001:db8::8"},
        {"tls_client_auth_san_ip": "192.0.2.70"},
        {"tls_client_auth_san_email": "OPS@client-1.example.com"},
        {"tls_client_auth_san_email": "client-1.example.com"},
    ],
)
def test_tls_client_auth_refuses_another_subject_rfc8705_2_1_2(metadata: dict[str, str]) -> None:
    with pytest.raises(InvalidClient) as caught:
        check_tls_client_auth(validated(pki().client), metadata)
    assert caught.value.reason == "certificate_mismatch"
    assert caught.value.status == 401


def test_tls_client_auth_a_san_rule_needs_a_san_rfc8705_2_1_2() -> None:
    with pytest.raises(InvalidClient) as caught:
        check_tls_client_auth(validated(pki().bare), {"tls_client_auth_san_dns": "bare"})
    assert caught.value.reason == "certificate_mismatch"
    check_tls_client_auth(validated(pki().bare), {"tls_client_auth_subject_dn": "CN=bare"})


def test_tls_client_auth_needs_a_validated_chain_rfc8705_2_1_d14() -> None:
    cert = ClientCertificate.from_der(der(pki().client))
    with pytest.raises(InvalidClient) as caught:
        check_tls_client_auth(cert, {"tls_client_auth_subject_dn": SUBJECT_DN})
    assert caught.value.reason == "chain_not_validated"


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {
            "tls_client_auth_subject_dn": SUBJECT_DN,
            "tls_client_auth_san_dns": "client-1.example.com",
        },
        {"tls_client_auth_subject_dn": ""},
        {"tls_client_auth_san_dns": ["client-1.example.com"]},
        {"tls_client_auth_subject_dn": "not a DN"},
        {"tls_client_auth_san_ip": "client-1.example.com"},
    ],
)
def test_tls_client_auth_fails_closed_on_bad_registration_rfc8705_2_1_2(
    metadata: dict[str, Any],
) -> None:
    with pytest.raises(InvalidClient) as caught:
        check_tls_client_auth(validated(pki().client), metadata)
    assert caught.value.reason == "client_metadata"
    with pytest.raises(InvalidClientMetadata):
        validate_tls_client_auth_metadata(metadata)


def test_registration_metadata_is_validated_rfc8705_2_1_2() -> None:
    assert validate_tls_client_auth_metadata({"tls_client_auth_san_ip": "::1", "x": 1}) == (
        "tls_client_auth_san_ip",
        "::1",
    )


# -- self_signed_tls_client_auth (RFC 8705 §2.2) ---------------------------------------------


def _rsa_jwk(key: rsa.RSAPrivateKey, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        return (
            base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))
            .rstrip(b"=")
            .decode()
        )

    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e), **extra}


def test_self_signed_matches_the_x5c_leaf_rfc8705_2_2() -> None:
    p = pki()
    jwk = _rsa_jwk(p.self_signed_key, x5c=[base64.b64encode(der(p.self_signed)).decode()])
    cert = ClientCertificate.from_der(der(p.self_signed))
    check_self_signed_tls_client_auth(cert, {"keys": [{"kty": "EC"}, "junk", jwk]})


def test_self_signed_matches_a_key_without_x5c_rfc8705_2_2() -> None:
    p = pki()
    cert = ClientCertificate.from_der(der(p.self_signed))
    check_self_signed_tls_client_auth(cert, {"keys": [_rsa_jwk(p.self_signed_key, kid="k1")]})


def test_self_signed_ec_and_ed25519_keys_match_by_thumbprint_rfc8705_2_2() -> None:
    from joserfc.jwk import ECKey, OKPKey

    for key in (ec.generate_private_key(ec.SECP384R1()), ed25519.Ed25519PrivateKey.generate()):
        name = _name(CN="self-signed")
        cert = _issue(name, key, name, key)
        joserfc_key = (ECKey if isinstance(key, ec.EllipticCurvePrivateKey) else OKPKey).import_key(
            key.public_key()  # type: ignore[arg-type]
        )
        jwk = joserfc_key.as_dict(private=False)
        check_self_signed_tls_client_auth(ClientCertificate.from_der(der(cert)), {"keys": [jwk]})


def test_self_signed_with_a_short_rsa_key_is_refused_rfc8705_2_2() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    name = _name(CN="weak")
    cert = _issue(name, key, name, key)
    with pytest.raises(InvalidClient) as caught:
        check_self_signed_tls_client_auth(
            ClientCertificate.from_der(der(cert)), {"keys": [_rsa_jwk(key)]}
        )
    assert caught.value.reason == "weak_key"


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": []},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]},
        {"keys": [{"kty": "oct", "k": "AAAA"}]},
        {"keys": [{"x5c": ["not base64!"]}]},
        {"keys": [{"x5c": [1]}]},
    ],
)
def test_self_signed_refuses_an_unregistered_certificate_rfc8705_2_2(jwks: dict[str, Any]) -> None:
    cert = ClientCertificate.from_der(der(pki().self_signed))
    with pytest.raises(InvalidClient) as caught:
        check_self_signed_tls_client_auth(cert, jwks)
    assert caught.value.reason == "certificate_mismatch"


def test_self_signed_x5c_of_another_certificate_with_the_same_key_is_refused_rfc8705_2_2() -> None:
    """A registered x5c pins the certificate, not only the key."""
    p = pki()
    other = _issue(_name(CN="other"), p.self_signed_key, _name(CN="other"), p.self_signed_key)
    jwk = _rsa_jwk(p.self_signed_key, x5c=[base64.b64encode(der(other)).decode()])
    with pytest.raises(InvalidClient):
        check_self_signed_tls_client_auth(
            ClientCertificate.from_der(der(p.self_signed)), {"keys": [jwk]}
        )


def test_self_signed_another_key_is_refused_rfc8705_2_2() -> None:
    p = pki()
    cert = ClientCertificate.from_der(der(p.client))  # an EC key not in the JWKS
    with pytest.raises(InvalidClient) as caught:
        check_self_signed_tls_client_auth(cert, {"keys": [_rsa_jwk(p.self_signed_key)]})
    assert caught.value.reason == "certificate_mismatch"


@pytest.mark.parametrize("jwks", [None, {}, {"keys": "nope"}])
def test_self_signed_without_a_jwks_fails_closed_rfc8705_2_2(jwks: Any) -> None:
    cert = ClientCertificate.from_der(der(pki().self_signed))
    with pytest.raises(InvalidClient) as caught:
        check_self_signed_tls_client_auth(cert, jwks)
    assert caught.value.reason == "client_metadata"


# -- certificate-bound tokens (RFC 8705 §3) --------------------------------------------------


def test_binding_matches_the_presented_certificate_rfc8705_3() -> None:
    cert = ClientCertificate.from_der(der(pki().client))
    check_binding({"x5t#S256": b64url_sha256(der(pki().client))}, cert)


@pytest.mark.parametrize(
    ("cnf", "with_cert", "reason"),
    [
        ({"x5t#S256": "wrong"}, True, "certificate_mismatch"),
        (None, True, "not_certificate_bound"),
        ({"jkt": "abc"}, True, "not_certificate_bound"),
        ({"x5t#S256": 5}, True, "not_certificate_bound"),
        ({"x5t#S256": "x"}, False, "missing_certificate"),
    ],
)
def test_binding_refusals_rfc8705_3(cnf: Any, with_cert: bool, reason: str) -> None:
    cert = ClientCertificate.from_der(der(pki().client)) if with_cert else None
    with pytest.raises(InvalidToken) as caught:
        check_binding(cnf, cert)
    assert caught.value.reason == reason
    assert caught.value.status == 401


def test_binding_to_another_certificate_is_refused_rfc8705_3() -> None:
    other = ClientCertificate.from_der(der(pki().self_signed))
    with pytest.raises(InvalidToken) as caught:
        check_binding({"x5t#S256": b64url_sha256(der(pki().client))}, other)
    assert caught.value.reason == "certificate_mismatch"


# -- the CertificateMatcher of client authentication -------------------------------------------


def test_match_client_certificate_is_a_certificate_matcher_rfc8705_2() -> None:
    from pyramid_attesto.core.clients import CertificateMatcher, Client
    from pyramid_attesto.core.mtls import match_client_certificate

    matcher: CertificateMatcher = match_client_certificate
    p = pki()
    tls = Client(
        client_id="c1",
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-1.example.com",
    )
    assert matcher(tls, validated(p.client), "tls_client_auth", None)
    assert not matcher(tls, ClientCertificate.from_der(der(p.client)), "tls_client_auth", None)
    assert not matcher(tls, validated(p.bare), "tls_client_auth", None)
    assert not matcher(tls, der(p.client), "tls_client_auth", None)  # not a ClientCertificate

    jwks = {"keys": [_rsa_jwk(p.self_signed_key)]}
    self_signed = Client(
        client_id="c2", token_endpoint_auth_method="self_signed_tls_client_auth", jwks=jwks
    )
    cert = ClientCertificate.from_der(der(p.self_signed))
    assert matcher(self_signed, cert, "self_signed_tls_client_auth", jwks)
    assert not matcher(self_signed, validated(p.client), "self_signed_tls_client_auth", jwks)
    assert not matcher(self_signed, cert, "self_signed_tls_client_auth", None)
