"""Mutual TLS: client authentication and certificate-bound tokens (RFC 8705).

- :func:`certificate_thumbprint` — ``x5t#S256`` (RFC 8705 §3.1): base64url(SHA-256(DER)) of a
  certificate that has been parsed first, so garbage never gets a thumbprint.
- :class:`ClientCertificate` — the certificate a request came with: its DER, the parsed
  certificate, and whether its chain was validated and by whom.
- Where certificates come from (DESIGN.md D14): the RFC 9440 ``Client-Cert`` header
  (:func:`parse_client_cert_header`, :func:`parse_client_cert_chain_header`) and the PEM of
  ``SSL_CLIENT_CERT`` (:func:`parse_ssl_client_cert`). Parsing decides nothing about trust:
  the Pyramid layer reads a header only from a trusted proxy, and only the proxy's own
  verification result, or :class:`CertificateTrust`, marks a chain validated.
- ``tls_client_auth`` (RFC 8705 §2.1): :func:`check_tls_client_auth` matches the one
  registered subject DN or SAN exactly, and refuses a certificate whose chain was not
  validated (D14).
- ``self_signed_tls_client_auth`` (RFC 8705 §2.2): :func:`check_self_signed_tls_client_auth`
  matches the certificate against the client's JWKS (the ``x5c`` leaf, or the public key).
- :func:`match_client_certificate` — both methods as the
  :class:`~pyramid_attesto.core.clients.CertificateMatcher` that client authentication uses.
- :func:`check_binding` — the resource server's check of ``cnf.x5t#S256`` (RFC 8705 §3).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, NoReturn
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jwk import thumbprint as jwk_thumbprint

from .clients import Client, MTLSMethod
from .clock import Clock
from .errors import InvalidClient, InvalidClientMetadata, InvalidRequest, InvalidToken
from .secret import constant_time_equals, sha256_b64url

__all__ = [
    "TLS_CLIENT_AUTH_METADATA",
    "CertificateTrust",
    "ClientCertificate",
    "certificate_thumbprint",
    "check_binding",
    "check_self_signed_tls_client_auth",
    "check_tls_client_auth",
    "load_certificate",
    "match_client_certificate",
    "parse_client_cert_chain_header",
    "parse_client_cert_header",
    "parse_ssl_client_cert",
    "ssl_client_verify_succeeded",
    "validate_tls_client_auth_metadata",
]

TLS_CLIENT_AUTH_METADATA: Final = (
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
)
"""RFC 8705 §2.1.2: a ``tls_client_auth`` client registers exactly one of these."""

MAX_CERTIFICATE_BYTES: Final = 16384

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
# RFC 8941 §3.3.5 sf-binary: ":" *(base64) ":" (standard alphabet, "=" padding).
_SF_BINARY = re.compile(r"\A:([A-Za-z0-9+/]*={0,2}):\Z")


def _bad_certificate(description: str = "the client certificate cannot be parsed") -> NoReturn:
    raise InvalidRequest(description, reason="invalid_certificate")


def load_certificate(data: bytes | str) -> x509.Certificate:
    """Parse one X.509 certificate from DER bytes or PEM text.

    Anything else raises :class:`~pyramid_attesto.core.errors.InvalidRequest` with
    ``reason="invalid_certificate"``.
    """
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    if len(data) > MAX_CERTIFICATE_BYTES * 2:
        _bad_certificate("the client certificate is too large")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        _bad_certificate()


def certificate_thumbprint(certificate: bytes | str | x509.Certificate) -> str:
    """``x5t#S256``: base64url(SHA-256(DER)) of a certificate (RFC 8705 §3.1).

    Accepts DER bytes, PEM text or a parsed certificate; the bytes are parsed first, and an
    unparseable certificate raises :class:`~pyramid_attesto.core.errors.InvalidRequest`.
    """
    if not isinstance(certificate, x509.Certificate):
        certificate = load_certificate(certificate)
    return sha256_b64url(certificate.public_bytes(Encoding.DER))


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The client certificate of a request.

    ``chain_validated`` is true only when something that holds trust anchors validated the
    chain: ``validated_by`` says what (for example ``"proxy"`` for a TLS-terminating proxy
    that verified it, ``"server"`` for the WSGI server's own TLS, ``"trust_anchors"`` for
    :class:`CertificateTrust`). ``tls_client_auth`` needs it; ``self_signed_tls_client_auth``
    and token binding do not (RFC 8705 §2.2, §3).
    """

    der: bytes
    certificate: x509.Certificate
    thumbprint: str
    chain_validated: bool = False
    validated_by: str | None = None

    def __post_init__(self) -> None:
        if self.chain_validated and not self.validated_by:
            raise ValueError("a validated chain needs validated_by")

    @classmethod
    def from_der(
        cls, der: bytes, *, chain_validated: bool = False, validated_by: str | None = None
    ) -> ClientCertificate:
        """Parse DER bytes (raises ``InvalidRequest``, ``reason="invalid_certificate"``)."""
        certificate = load_certificate(bytes(der))
        canonical = certificate.public_bytes(Encoding.DER)
        return cls(
            der=canonical,
            certificate=certificate,
            thumbprint=sha256_b64url(canonical),
            chain_validated=chain_validated,
            validated_by=validated_by,
        )

    @classmethod
    def from_client_cert_header(
        cls, value: str, *, chain_validated: bool = False, validated_by: str | None = None
    ) -> ClientCertificate:
        """From an RFC 9440 ``Client-Cert`` header value (read only from a trusted proxy)."""
        return cls.from_der(
            parse_client_cert_header(value),
            chain_validated=chain_validated,
            validated_by=validated_by,
        )

    @classmethod
    def from_pem(
        cls, pem: str, *, chain_validated: bool = False, validated_by: str | None = None
    ) -> ClientCertificate:
        """From ``SSL_CLIENT_CERT``-style PEM (see :func:`parse_ssl_client_cert`)."""
        return cls.from_der(
            parse_ssl_client_cert(pem),
            chain_validated=chain_validated,
            validated_by=validated_by,
        )

    def validated(self, by: str) -> ClientCertificate:
        """This certificate, marked as having a chain validated by ``by``."""
        return replace(self, chain_validated=True, validated_by=by)


# -- sources (DESIGN.md D14) ----------------------------------------------------------------


def _sf_binary(item: str) -> bytes:
    match = _SF_BINARY.match(item.strip(" \t"))
    if match is None:
        _bad_certificate("the Client-Cert header is not a byte sequence")
    body = match.group(1)
    if len(body) > MAX_CERTIFICATE_BYTES * 4 // 3 + 4:
        _bad_certificate("the client certificate is too large")
    try:
        # RFC 8941 §4.2.7: parsers should tolerate missing padding.
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        _bad_certificate("the Client-Cert header is not a byte sequence")


def parse_client_cert_header(value: str) -> bytes:
    """The DER certificate of an RFC 9440 §2.2 ``Client-Cert`` header: ``:base64(DER):``.

    The header is an sf-binary Item; parameters, lists and anything that does not parse as a
    certificate raise :class:`~pyramid_attesto.core.errors.InvalidRequest`.
    """
    der = _sf_binary(value)
    load_certificate(der)
    return der


def parse_client_cert_chain_header(value: str) -> list[bytes]:
    """The DER certificates of an RFC 9440 §2.3 ``Client-Cert-Chain`` header (a list of
    sf-binary items, the leaf excluded), each parsed to be sure it is a certificate."""
    chain: list[bytes] = []
    for item in value.split(","):
        if not item.strip(" \t"):
            continue
        der = _sf_binary(item)
        load_certificate(der)
        chain.append(der)
    return chain


def parse_ssl_client_cert(value: str) -> bytes:
    """The DER certificate of a ``SSL_CLIENT_CERT``-style PEM value.

    Accepts the PEM of Apache mod_ssl, nginx's ``$ssl_client_escaped_cert`` (URL-encoded)
    and ``$ssl_client_cert`` (tab-indented lines), and PEM whose line breaks a proxy turned
    into spaces.
    """
    text = value.strip()
    if text.startswith("-----BEGIN%20"):
        text = unquote(text)
    match = _PEM.search(text)
    if match is None:
        _bad_certificate("SSL_CLIENT_CERT is not a PEM certificate")
    body = "".join(match.group(1).split())
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        _bad_certificate("SSL_CLIENT_CERT is not a PEM certificate")
    load_certificate(der)
    return der


def ssl_client_verify_succeeded(value: str | None) -> bool:
    """Whether ``SSL_CLIENT_VERIFY`` (Apache mod_ssl, nginx ``$ssl_client_verify``) reports
    a validated chain: only ``SUCCESS`` does (``NONE``, ``GENEROUS``, ``FAILED:…`` do not)."""
    return value == "SUCCESS"


class CertificateTrust:
    """Chain validation against configured trust anchors (DESIGN.md D14), for deployments
    where the TLS terminator accepts any certificate and the application decides.

    The anchors and the verification store are built once. Validation follows the RFC 5280
    profile of :mod:`cryptography.x509.verification` for client certificates.
    """

    __slots__ = ("_store", "clock", "max_chain_depth")

    def __init__(
        self, trust_anchors: Iterable[x509.Certificate], *, clock: Clock, max_chain_depth: int = 4
    ) -> None:
        anchors = list(trust_anchors)
        if not anchors:
            raise ValueError("CertificateTrust needs at least one trust anchor")
        self._store = Store(anchors)
        self.clock = clock
        self.max_chain_depth = max_chain_depth

    def validate(
        self, certificate: ClientCertificate, intermediates: Sequence[x509.Certificate] = ()
    ) -> ClientCertificate:
        """The certificate marked ``validated_by="trust_anchors"``, or
        :class:`~pyramid_attesto.core.errors.InvalidClient` (``reason="untrusted_chain"``)."""
        now = datetime.datetime.fromtimestamp(self.clock.now(), tz=datetime.UTC)
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .max_chain_depth(self.max_chain_depth)
            .build_client_verifier()
        )
        try:
            verifier.verify(certificate.certificate, list(intermediates))
        except (VerificationError, ValueError):
            raise InvalidClient(
                "the client certificate chain is not trusted", reason="untrusted_chain"
            ) from None
        return certificate.validated("trust_anchors")


# -- tls_client_auth (RFC 8705 §2.1) ---------------------------------------------------------


def validate_tls_client_auth_metadata(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """The one ``tls_client_auth_*`` parameter of a client's metadata, as ``(name, value)``.

    RFC 8705 §2.1.2: exactly one, a non-empty string; a subject DN must parse as RFC 4514 and
    an IP address as an address. Otherwise
    :class:`~pyramid_attesto.core.errors.InvalidClientMetadata` (use it at registration).
    """
    present = [(name, metadata[name]) for name in TLS_CLIENT_AUTH_METADATA if name in metadata]
    if len(present) != 1:
        raise InvalidClientMetadata(
            "tls_client_auth needs exactly one subject DN or SAN parameter",
            reason="tls_client_auth_metadata",
        )
    name, value = present[0]
    if not isinstance(value, str) or not value:
        raise InvalidClientMetadata(
            "the tls_client_auth parameter must be a non-empty string",
            reason="tls_client_auth_metadata",
        )
    try:
        if name == "tls_client_auth_subject_dn":
            x509.Name.from_rfc4514_string(value)
        elif name == "tls_client_auth_san_ip":
            ipaddress.ip_address(value)
    except ValueError:
        raise InvalidClientMetadata(
            "the tls_client_auth parameter is malformed", reason="tls_client_auth_metadata"
        ) from None
    return name, value


def _subject_alt_names(certificate: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a malformed extension
        _bad_certificate()


def _matches(certificate: x509.Certificate, name: str, expected: str) -> bool:
    if name == "tls_client_auth_subject_dn":
        # RFC 4514 string form of both sides: the registered DN is re-serialised, so spacing
        # and escaping do not matter, but attribute order and case do (exact match).
        subject = certificate.subject.rfc4514_string()
        return (
            subject == expected
            or subject == x509.Name.from_rfc4514_string(expected).rfc4514_string()
        )
    sans = _subject_alt_names(certificate)
    if sans is None:
        return False
    if name == "tls_client_auth_san_dns":
        # DNS names are case-insensitive (RFC 4343); nothing else is folded, no wildcards.
        wanted = expected.lower()
        return any(v.lower() == wanted for v in sans.get_values_for_type(x509.DNSName))
    if name == "tls_client_auth_san_uri":
        return expected in sans.get_values_for_type(x509.UniformResourceIdentifier)
    if name == "tls_client_auth_san_ip":
        # RFC 8705 §2.1.2: compared in binary form (RFC 5952 §8).
        address = ipaddress.ip_address(expected)
        return address in sans.get_values_for_type(x509.IPAddress)
    return expected in sans.get_values_for_type(x509.RFC822Name)


def check_tls_client_auth(certificate: ClientCertificate, metadata: Mapping[str, Any]) -> None:
    """Authenticate a ``tls_client_auth`` client (RFC 8705 §2.1), or raise
    :class:`~pyramid_attesto.core.errors.InvalidClient`:

    - ``chain_not_validated`` — no trusted party validated the chain (DESIGN.md D14);
    - ``client_metadata`` — the client's registration does not hold exactly one usable
      ``tls_client_auth_*`` parameter (fail closed);
    - ``certificate_mismatch`` — the subject DN or the SAN does not match.
    """
    if not certificate.chain_validated:
        raise InvalidClient(
            "the client certificate chain was not validated", reason="chain_not_validated"
        )
    try:
        name, expected = validate_tls_client_auth_metadata(metadata)
    except InvalidClientMetadata:
        raise InvalidClient(
            "the client is not registered for tls_client_auth", reason="client_metadata"
        ) from None
    if not _matches(certificate.certificate, name, expected):
        raise InvalidClient(
            "the client certificate does not match the registration",
            reason="certificate_mismatch",
        )


# -- self_signed_tls_client_auth (RFC 8705 §2.2) ---------------------------------------------


# The members RFC 7638 §3.2 hashes.
_THUMBPRINT_MEMBERS: Final = {"EC": ("crv", "x", "y"), "RSA": ("e", "n"), "OKP": ("crv", "x")}


def _key_thumbprint(certificate: x509.Certificate) -> str | None:
    """The RFC 7638 thumbprint of the certificate's public key (joserfc), or ``None`` for a
    key type JOSE has no JWK for."""
    public = certificate.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < 2048:
            raise InvalidClient("the client certificate key is too short", reason="weak_key")
        return RSAKey.import_key(public).thumbprint()
    if isinstance(public, ec.EllipticCurvePublicKey):
        try:
            return ECKey.import_key(public).thumbprint()
        except (JoseError, KeyError, ValueError):  # a curve JOSE does not name
            return None
    if isinstance(public, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return OKPKey.import_key(public).thumbprint()
    return None


def _jwk_matches(jwk: Mapping[str, Any], der: bytes, key_thumbprint: str | None) -> bool:
    x5c = jwk.get("x5c")
    if isinstance(x5c, list) and x5c:
        leaf = x5c[0]
        if not isinstance(leaf, str):
            return False
        try:
            # RFC 7517 §4.7: base64 (not base64url) DER.
            registered = base64.b64decode(leaf, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(registered, der)
    kty = jwk.get("kty")
    names = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if key_thumbprint is None or names is None:
        return False
    members = {name: jwk.get(name) for name in names}
    if not all(isinstance(value, str) for value in members.values()):
        return False
    members["kty"] = kty
    return constant_time_equals(jwk_thumbprint(members), key_thumbprint)


def check_self_signed_tls_client_auth(
    certificate: ClientCertificate, jwks: Mapping[str, Any] | None
) -> None:
    """Authenticate a ``self_signed_tls_client_auth`` client (RFC 8705 §2.2).

    The certificate must be the ``x5c`` leaf of a key in the client's JWKS (``jwks`` or
    the fetched ``jwks_uri`` document), or — for a key without ``x5c`` — have that key as its
    public key (compared by RFC 7638 thumbprint). The chain need not be validated: the
    registration is the trust. Otherwise :class:`~pyramid_attesto.core.errors.InvalidClient`:
    ``certificate_mismatch``, ``client_metadata`` for a missing or malformed JWKS, or
    ``weak_key`` for an RSA key under 2048 bits.
    """
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise InvalidClient("the client has no usable JWKS", reason="client_metadata")
    key_thumbprint = _key_thumbprint(certificate.certificate)
    for jwk in keys:
        if isinstance(jwk, Mapping) and _jwk_matches(jwk, certificate.der, key_thumbprint):
            return
    raise InvalidClient(
        "the client certificate is not registered for this client",
        reason="certificate_mismatch",
    )


def match_client_certificate(
    client: Client,
    certificate: object,
    method: MTLSMethod,
    jwks: Mapping[str, Any] | None,
) -> bool:
    """The :class:`~pyramid_attesto.core.clients.CertificateMatcher` for both RFC 8705
    methods: :func:`check_tls_client_auth` against the client's registered subject, or
    :func:`check_self_signed_tls_client_auth` against its JWKS. ``certificate`` must be a
    :class:`ClientCertificate`; any failure is ``False``, never an exception.
    """
    if not isinstance(certificate, ClientCertificate):
        return False
    try:
        if method == "tls_client_auth":
            metadata = {
                name: getattr(client, name)
                for name in TLS_CLIENT_AUTH_METADATA
                if getattr(client, name, None) is not None
            }
            check_tls_client_auth(certificate, metadata)
        else:
            check_self_signed_tls_client_auth(certificate, jwks)
    except (InvalidClient, InvalidRequest):
        return False
    return True


# -- certificate-bound tokens (RFC 8705 §3) --------------------------------------------------


def check_binding(cnf: Mapping[str, Any] | None, certificate: ClientCertificate | None) -> None:
    """The resource server's check that a token's ``cnf.x5t#S256`` is the thumbprint of the
    certificate of this request (RFC 8705 §3). Otherwise
    :class:`~pyramid_attesto.core.errors.InvalidToken` (401): ``not_certificate_bound``,
    ``missing_certificate`` or ``certificate_mismatch``; compared in constant time.
    """
    expected = cnf.get("x5t#S256") if isinstance(cnf, Mapping) else None
    if not isinstance(expected, str) or not expected:
        raise InvalidToken(
            "the access token is not bound to a certificate", reason="not_certificate_bound"
        )
    if certificate is None:
        raise InvalidToken(
            "the access token needs the client certificate it is bound to",
            reason="missing_certificate",
        )
    if not constant_time_equals(certificate.thumbprint, expected):
        raise InvalidToken(
            "the access token is bound to another certificate", reason="certificate_mismatch"
        )
