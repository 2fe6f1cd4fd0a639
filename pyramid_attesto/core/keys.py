"""Signing keys and the keystore (DESIGN.md D5, D19).

What it implements:

- JSON Web Keys (RFC 7517) for the four signing algorithms we mint with (RFC 7518 §3.1,
  RFC 8037 §3.1): ``ES256`` (P-256, the default), ``EdDSA`` (Ed25519), ``RS256`` and ``PS256``
  (RSA, at least 2048 bits, RFC 7518 §3.3 and §3.5).
- ``kid`` = the RFC 7638 JWK thumbprint unless the key file names one.
- The public JWK Set document (RFC 7517 §5) served at ``jwks_uri`` (RFC 8414 §2): every published
  key, active or retired, and never a private member.
- One active signer per algorithm, so keys rotate without downtime: a new key is first
  *published*, later made *active*, and the old key stays published until every token it
  signed has expired.
- ``RS256`` is what ID tokens use unless a client registered ``id_token_signed_response_alg``
  (OpenID Connect Core §15.1, §3.1.3.7); a keystore without an RSA key still serves access
  tokens, and :meth:`Keystore.signer` names the fix when an ID token needs one.

Signing goes through the :class:`Signer` Protocol (``sign(signing_input) -> signature``), so a
KMS or HSM key signs without leaving its custody. Verification keys are imported once, when the
keystore is built, and looked up by ``kid`` in a dict (DESIGN.md rule 11).

The private key file is a JWK Set, ``{"keys": [...]}``, of private (or, for retired keys whose
private half was destroyed, public) JWKs. The *first* private key of each algorithm in file
order is that algorithm's active signer, unless one key of that algorithm carries
``"active": true``. ``"active"`` is our own member: it never appears in the public JWK Set.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Literal,
    NotRequired,
    Protocol,
    TypedDict,
    cast,
    get_args,
)

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from joserfc import jws as _jws  # noqa: F401  (registers the JWS algorithm models)
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key
from joserfc.jws import JWSRegistry

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_ALGORITHM",
    "ID_TOKEN_DEFAULT_ALGORITHM",
    "MIN_RSA_BITS",
    "SIGNING_ALGORITHMS",
    "Algorithm",
    "FileKeystore",
    "JWKSet",
    "KeyAlgorithmMismatch",
    "Keystore",
    "LocalSigner",
    "PrivateJWK",
    "PublicJWK",
    "Signer",
    "StaticKeystore",
    "VerificationKey",
    "generate_development_keystore",
    "generate_key",
    "private_signer",
    "public_jwk",
]

logger = logging.getLogger("pyramid_attesto.keys")

Algorithm = Literal["ES256", "EdDSA", "RS256", "PS256"]
"""The JWS ``alg`` values this library signs and verifies with (RFC 7518 §3.1, RFC 8037 §3.1)."""

SIGNING_ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)
"""Every :data:`Algorithm`, in order of preference."""
DEFAULT_ALGORITHM: Final[Algorithm] = "ES256"
"""What access tokens are signed with unless configured otherwise."""
ID_TOKEN_DEFAULT_ALGORITHM: Final[Algorithm] = "RS256"  # noqa: S105  (an alg name)
"""OpenID Connect Core §15.1: every OP must be able to sign ID tokens with RS256."""
MIN_RSA_BITS: Final = 2048
"""RFC 7518 §3.3: an RSA key used with RS256/PS256 must be 2048 bits or larger."""

VerificationKey = RSAKey | ECKey | OKPKey
"""An imported public key object (joserfc), ready for signature verification."""

_KTY: Final[dict[Algorithm, str]] = {"ES256": "EC", "EdDSA": "OKP", "RS256": "RSA", "PS256": "RSA"}
_PUBLIC_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "EC": ("crv", "x", "y"),
    "OKP": ("crv", "x"),
    "RSA": ("n", "e"),
}
# What is handed to joserfc: the key material only (RFC 7518 §6, RFC 8037 §2). ``alg``, ``use``,
# ``kid`` and ``key_ops`` are checked here; ``x5c`` and friends are not used.
_MATERIAL: Final = frozenset({"kty", "crv", "x", "y", "n", "e", "d", "p", "q", "dp", "dq", "qi"})


class PublicJWK(TypedDict):
    """A published verification key (RFC 7517 §4): only public members."""

    kty: str
    kid: str
    use: str
    alg: str
    crv: NotRequired[str]
    x: NotRequired[str]
    y: NotRequired[str]
    n: NotRequired[str]
    e: NotRequired[str]


class PrivateJWK(TypedDict):
    """A private signing key as stored in the keystore file (RFC 7517 §4, RFC 7518 §6)."""

    kty: str
    kid: str
    use: str
    alg: str
    crv: NotRequired[str]
    x: NotRequired[str]
    y: NotRequired[str]
    n: NotRequired[str]
    e: NotRequired[str]
    d: NotRequired[str]
    p: NotRequired[str]
    q: NotRequired[str]
    dp: NotRequired[str]
    dq: NotRequired[str]
    qi: NotRequired[str]
    active: NotRequired[bool]


class JWKSet(TypedDict):
    """The public JWK Set document served at ``jwks_uri`` (RFC 7517 §5)."""

    keys: list[PublicJWK]


class KeyAlgorithmMismatch(LookupError):
    """A ``kid`` names a published key of another algorithm (RFC 8725 §3.1: one key, one
    algorithm). Verifiers turn it into their own ``invalid_*`` error."""


# --- the extension points -----------------------------------------------------------------


class Signer(Protocol):
    """Something that signs JWS signing inputs with one key and one algorithm.

    ``sign`` returns the signature in its JWS form (RFC 7518 §3): for ``ES256`` the 64-byte
    ``R || S`` concatenation, *not* DER; for ``EdDSA`` the 64-byte Ed25519 signature; for
    ``RS256``/``PS256`` the RSA signature bytes. A KMS or HSM implementation sends
    ``signing_input`` (or its digest) to the device and never exports the private key.
    """

    @property
    def kid(self) -> str:
        """The ``kid`` placed in the JWS header; the key's published JWK has the same."""
        ...

    @property
    def alg(self) -> Algorithm:
        """The JWS ``alg`` this signer produces."""
        ...

    @property
    def public_jwk(self) -> PublicJWK:
        """The public half, as published in the JWK Set."""
        ...

    def sign(self, signing_input: bytes) -> bytes:
        """Sign ``ASCII(BASE64URL(header) || '.' || BASE64URL(payload))`` (RFC 7515 §5.1)."""
        ...


class Keystore(Protocol):
    """Where tokens get their signer and verifiers their keys.

    Implementations: :class:`StaticKeystore` (signers and published keys handed in),
    :class:`FileKeystore` (a private JWK Set file or PEM files) and
    :func:`generate_development_keystore`. A host may supply its own (a KMS-backed one).
    """

    @property
    def algorithms(self) -> frozenset[Algorithm]:
        """The algorithms this keystore can sign with (one active signer each)."""
        ...

    def signer(self, alg: Algorithm | None = None) -> Signer:
        """The active signer for ``alg``.

        ``None`` means ``ES256`` when the keystore has an ES256 key, otherwise its first
        algorithm. Raises :class:`~pyramid_attesto.core.errors.ConfigurationError` naming the
        fix when no key of ``alg`` is active.
        """
        ...

    def verification_key(self, kid: str, alg: str) -> VerificationKey | None:
        """The imported public key published under ``kid``, or ``None`` if there is none.

        Raises :class:`KeyAlgorithmMismatch` when ``kid`` is published for another ``alg``.
        """
        ...

    def jwks(self) -> JWKSet:
        """The public JWK Set: every published key (active and retired), public members only."""
        ...


# --- local keys -----------------------------------------------------------------------------


def _alg_model(alg: Algorithm) -> Any:
    # The algorithm models themselves, not ``JWSRegistry.get_alg``: that one warns on EdDSA
    # (RFC 9864 deprecates the name) and filterwarnings=error turns warnings into failures.
    return JWSRegistry.algorithms[alg]


@dataclass(frozen=True)
class LocalSigner:
    """A :class:`Signer` holding a private key in process memory (joserfc signs)."""

    kid: str
    alg: Algorithm
    key: VerificationKey = field(repr=False)
    public_jwk: PublicJWK = field(repr=False)

    def sign(self, signing_input: bytes) -> bytes:
        result: bytes = _alg_model(self.alg).sign(signing_input, self.key)
        return result


@dataclass(frozen=True)
class _Entry:
    kid: str
    alg: Algorithm
    public: PublicJWK
    private: VerificationKey | None
    marked_active: bool


def _default_alg(jwk: Mapping[str, Any]) -> Algorithm:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    if kty == "RSA":
        return "RS256"
    raise ConfigurationError(
        f"unsupported key type kty={kty!r} crv={crv!r}: use EC P-256 (ES256), "
        "OKP Ed25519 (EdDSA) or RSA >= 2048 bits (RS256, PS256)"
    )


def _check_alg(jwk: Mapping[str, Any]) -> Algorithm:
    alg = jwk.get("alg")
    if alg is None:
        return _default_alg(jwk)
    if alg not in SIGNING_ALGORITHMS:
        raise ConfigurationError(
            f"unsupported key alg {alg!r}: use one of {', '.join(SIGNING_ALGORITHMS)}"
        )
    checked = cast(Algorithm, alg)
    if _KTY[checked] != jwk.get("kty") or (
        checked in ("ES256", "EdDSA") and _default_alg(jwk) != checked
    ):
        raise ConfigurationError(
            f"key alg {alg!r} does not fit kty={jwk.get('kty')!r} crv={jwk.get('crv')!r}"
        )
    return checked


def _refuse_small_rsa(bits: int) -> None:
    if bits < MIN_RSA_BITS:
        raise ConfigurationError(
            f"RSA key of {bits} bits refused: RS256/PS256 need at least {MIN_RSA_BITS} "
            "(RFC 7518 §3.3); generate a new one with `attesto keys generate --alg RS256`"
        )


def _rsa_bits(jwk: Mapping[str, Any]) -> int:
    n = jwk.get("n")
    if not isinstance(n, str):
        raise ConfigurationError("an RSA key needs its modulus n")
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except (ValueError, binascii.Error) as exc:
        raise ConfigurationError("an RSA key's modulus n is not base64url") from exc


def _import(jwk: Mapping[str, Any]) -> VerificationKey:
    # The size is checked before joserfc sees the key: joserfc warns on small RSA keys, and
    # we refuse them outright.
    if jwk.get("kty") == "RSA":
        _refuse_small_rsa(_rsa_bits(jwk))
    data = {k: v for k, v in jwk.items() if k in _MATERIAL}
    if jwk.get("alg") is not None:
        data["alg"] = jwk["alg"]  # so joserfc refuses to verify with it under another alg
    try:
        key = import_key(data)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"cannot import key: {exc}") from exc
    if not isinstance(key, (RSAKey, ECKey, OKPKey)):
        raise ConfigurationError("symmetric keys cannot sign tokens")
    return key


def public_jwk(jwk: Mapping[str, Any], *, kid: str | None = None) -> PublicJWK:
    """The public JWK of a private or public ``jwk``: its key members, ``kid``, ``alg`` and
    ``use: "sig"``, and nothing else (so no private member can leak into the JWK Set).

    ``kid`` defaults to the key's own ``kid``, else its RFC 7638 thumbprint.
    """
    return _entry(jwk, kid=kid).public


def _entry(jwk: Mapping[str, Any], *, kid: str | None = None) -> _Entry:
    if not isinstance(jwk, Mapping):
        raise ConfigurationError("a key must be a JSON object")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise ConfigurationError(f'key use {use!r} refused: signing keys need "use": "sig"')
    alg = _check_alg(jwk)
    key = _import(jwk)
    key_ops = jwk.get("key_ops")
    needed = "sign" if key.is_private else "verify"
    if key_ops is not None and (not isinstance(key_ops, list) or needed not in key_ops):
        raise ConfigurationError(f'key_ops must include "{needed}" (RFC 7517 §4.3)')
    if kid is None:
        kid = jwk.get("kid")
    if kid is None:
        kid = key.thumbprint()
    if not isinstance(kid, str) or not kid:
        raise ConfigurationError("a key's kid must be a non-empty string")
    members = key.as_dict(private=False)
    public: dict[str, Any] = {"kty": members["kty"], "kid": kid, "use": "sig", "alg": alg}
    for name in _PUBLIC_MEMBERS[str(members["kty"])]:
        public[name] = members[name]
    active = jwk.get("active", False)
    if not isinstance(active, bool):
        raise ConfigurationError(f'key {kid}: "active" must be true or false')
    private = key if key.is_private else None
    if active and private is None:
        raise ConfigurationError(f'key {kid} is marked "active" but has no private part')
    return _Entry(kid, alg, cast(PublicJWK, public), private, active)


def private_signer(jwk: Mapping[str, Any], *, kid: str | None = None) -> LocalSigner:
    """A :class:`LocalSigner` for one private JWK (``kid`` as in :func:`public_jwk`)."""
    entry = _entry(jwk, kid=kid)
    if entry.private is None:
        raise ConfigurationError(f"key {entry.kid} has no private part: it cannot sign")
    return LocalSigner(entry.kid, entry.alg, entry.private, entry.public)


# --- keystores ------------------------------------------------------------------------------


class StaticKeystore:
    """A :class:`Keystore` built once from active signers and extra published keys.

    ``signers`` are the active signers, at most one per algorithm; their public keys are
    published first. ``published`` adds public (or private: only the public half is kept)
    JWKs of keys that verify but do not sign: the next key, published ahead of its
    activation, and retired keys whose tokens may still be live.

    Every published key is imported once, here; :meth:`verification_key` is a dict lookup.
    """

    def __init__(
        self,
        signers: Iterable[Signer],
        published: Iterable[Mapping[str, Any]] = (),
        *,
        ephemeral: bool = False,
    ) -> None:
        self._signers: dict[Algorithm, Signer] = {}
        public: list[PublicJWK] = []
        for signer in signers:
            checked = _entry(signer.public_jwk, kid=signer.kid)
            if checked.alg != signer.alg:
                raise ConfigurationError(
                    f"signer {signer.kid}: its alg {signer.alg} does not fit its public key"
                )
            if signer.alg in self._signers:
                raise ConfigurationError(
                    f"two active {signer.alg} keys ({self._signers[signer.alg].kid} and "
                    f"{signer.kid}): exactly one key per algorithm signs"
                )
            self._signers[signer.alg] = signer
            public.append(checked.public)
        public.extend(public_jwk(jwk) for jwk in published)
        self._keys: dict[str, tuple[str, VerificationKey]] = {}
        for jwk in public:
            kid = jwk["kid"]
            if kid in self._keys:
                raise ConfigurationError(
                    f"kid {kid!r} is published twice: give each key its own kid"
                )
            self._keys[kid] = (jwk["alg"], _import(jwk))
        self._public: tuple[PublicJWK, ...] = tuple(public)
        self._default: Algorithm | None = next(iter(self._signers), None)
        if DEFAULT_ALGORITHM in self._signers:
            self._default = DEFAULT_ALGORITHM
        self.ephemeral = ephemeral
        """Whether the keys exist only in this process (DESIGN.md D19: unfit for several)."""

    @property
    def algorithms(self) -> frozenset[Algorithm]:
        return frozenset(self._signers)

    def signer(self, alg: Algorithm | None = None) -> Signer:
        wanted = alg if alg is not None else self._default
        signer = self._signers.get(wanted) if wanted is not None else None
        if signer is None:
            hint = (
                " (ID tokens are signed with RS256 unless the client registered "
                "id_token_signed_response_alg, OpenID Connect Core §15.1)"
                if wanted == ID_TOKEN_DEFAULT_ALGORITHM
                else ""
            )
            raise ConfigurationError(
                f"the keystore has no active {wanted or 'signing'} key{hint}: add one with "
                f"`attesto keys generate --alg {wanted or DEFAULT_ALGORITHM}`"
            )
        return signer

    def verification_key(self, kid: str, alg: str) -> VerificationKey | None:
        found = self._keys.get(kid)
        if found is None:
            return None
        if found[0] != alg:
            raise KeyAlgorithmMismatch(kid)
        return found[1]

    def jwks(self) -> JWKSet:
        return {"keys": [cast(PublicJWK, dict(jwk)) for jwk in self._public]}

    def __repr__(self) -> str:
        active = ", ".join(f"{a}={s.kid}" for a, s in self._signers.items())
        return f"<{type(self).__name__} active: {active}; published: {len(self._public)}>"


class FileKeystore(StaticKeystore):
    """Keys read from files: private JWK Sets (``{"keys": [...]}``) or PEM files.

    Files are read in order and their keys concatenated. For each algorithm the active signer
    is the key marked ``"active": true`` (at most one per algorithm), else the first private
    key of that algorithm. Every other key is published for verification only. A PEM file
    holds one key (PKCS#8, traditional or SubjectPublicKeyInfo); its algorithm is ES256 for
    P-256, EdDSA for Ed25519 and RS256 for RSA unless ``pem_algorithms`` maps its path to
    another (``"PS256"``), and its ``kid`` is its thumbprint.

    The files are read once; rotating means editing them and restarting (or reloading) every
    process: see the docs' rotation steps.
    """

    def __init__(
        self,
        *paths: str | PathLike[str],
        pem_algorithms: Mapping[str, Algorithm] | None = None,
    ) -> None:
        if not paths:
            raise ConfigurationError("FileKeystore needs at least one key file")
        self.paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        algs = {Path(p): alg for p, alg in (pem_algorithms or {}).items()}
        stray = set(algs) - set(self.paths)
        if stray:
            raise ConfigurationError(
                f"pem_algorithms names files that are not loaded: {sorted(map(str, stray))}"
            )
        entries: list[_Entry] = []
        for path in self.paths:
            entries.extend(_read_file(path, algs.get(path)))
        signers, published = _choose_active(entries)
        super().__init__(signers, published)


def _read_file(path: Path, pem_alg: Algorithm | None) -> list[_Entry]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read key file {path}: {exc.strerror}") from exc
    if data.lstrip().startswith(b"{"):
        return _read_jwks(path, data)
    return [_read_pem(path, data, pem_alg)]


def _read_jwks(path: Path, data: bytes) -> list[_Entry]:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ConfigurationError(f"key file {path} is not valid JSON") from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigurationError(f'key file {path} must be a JWK Set: {{"keys": [...]}}')
    entries = []
    for index, jwk in enumerate(keys):
        try:
            entries.append(_entry(jwk))
        except ConfigurationError as exc:
            raise ConfigurationError(f"key file {path}, key #{index}: {exc}") from exc
    return entries


def _read_pem(path: Path, data: bytes, alg: Algorithm | None) -> _Entry:
    native: Any
    try:
        native = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        try:
            native = load_pem_public_key(data)
        except ValueError as exc:
            raise ConfigurationError(
                f"key file {path} is neither a JWK Set nor an unencrypted PEM key"
            ) from exc
    kty: Literal["EC", "OKP", "RSA"]
    if isinstance(native, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        kty = "EC"
    elif isinstance(native, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        kty = "OKP"
    elif isinstance(native, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        kty = "RSA"
        _refuse_small_rsa(native.key_size)
    else:
        raise ConfigurationError(f"key file {path}: unsupported key type")
    try:
        jwk: dict[str, Any] = dict(import_key(data, kty).as_dict(private=True))
    except (JoseError, ValueError) as exc:
        raise ConfigurationError(f"key file {path}: {exc}") from exc
    if alg is not None:
        jwk["alg"] = alg
    try:
        return _entry(jwk)
    except ConfigurationError as exc:
        raise ConfigurationError(f"key file {path}: {exc}") from exc


def _choose_active(entries: Sequence[_Entry]) -> tuple[list[Signer], list[PublicJWK]]:
    marked: dict[Algorithm, _Entry] = {}
    for entry in entries:
        if entry.marked_active:
            if entry.alg in marked:
                raise ConfigurationError(
                    f'two {entry.alg} keys are marked "active" ({marked[entry.alg].kid} and '
                    f"{entry.kid}): mark exactly one"
                )
            marked[entry.alg] = entry
    active: dict[Algorithm, _Entry] = dict(marked)
    for entry in entries:
        if entry.private is not None and entry.alg not in active:
            active[entry.alg] = entry
    chosen = {id(e) for e in active.values()}
    signers: list[Signer] = [
        LocalSigner(e.kid, e.alg, e.private, e.public)
        for e in entries
        if id(e) in chosen and e.private is not None
    ]
    published = [e.public for e in entries if id(e) not in chosen]
    return signers, published


# --- generation -----------------------------------------------------------------------------


def generate_key(alg: Algorithm = DEFAULT_ALGORITHM, *, rsa_bits: int = 2048) -> PrivateJWK:
    """A fresh private JWK for ``alg`` with ``kid`` (its RFC 7638 thumbprint), ``alg`` and
    ``use`` set: one entry of a keystore file (``attesto keys generate``)."""
    key: VerificationKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519", private=True)
    elif alg in ("RS256", "PS256"):
        if rsa_bits < MIN_RSA_BITS:
            raise ConfigurationError(f"RSA keys need at least {MIN_RSA_BITS} bits")
        key = RSAKey.generate_key(rsa_bits, private=True)
    else:
        raise ConfigurationError(f"cannot generate a key for alg {alg!r}")
    jwk: dict[str, Any] = dict(key.as_dict(private=True))
    jwk.update(kid=key.thumbprint(), use="sig", alg=alg)
    return cast(PrivateJWK, jwk)


def generate_development_keystore(
    algorithms: Sequence[Algorithm] = ("ES256", "RS256"),
) -> StaticKeystore:
    """A keystore of freshly generated keys (ES256 for access tokens, RS256 for ID tokens).

    The keys live only in this process: tokens signed by one process do not verify in
    another, and every restart invalidates every token. Fine for tests and ``attesto demo``,
    unfit for any deployment with several processes (DESIGN.md D19). Logs a warning.
    """
    signers = [private_signer(generate_key(alg)) for alg in algorithms]
    logger.warning(
        "pyramid_attesto: using a generated per-process development key (%s); tokens will not "
        "verify in other processes or after a restart. Configure attesto.keystore with a key "
        "file (`attesto keys generate`) for any real deployment.",
        ", ".join(algorithms),
    )
    return StaticKeystore(signers, ephemeral=True)


if TYPE_CHECKING:  # mypy checks that the implementations satisfy the Protocols
    _signer: type[Signer] = LocalSigner
    _keystore: type[Keystore] = StaticKeystore
