"""DPoP keys and proofs for tests (``dpop_key``, ``dpop_proof``): RFC 9449 §4.2.

Proofs are signed by the core's own :func:`~pyramid_attesto.core.dpop.build_proof`, so a good
proof is exactly what a conforming client sends. A *broken* proof is a good one with one
thing wrong, for the negative tests of a host's routes (each is refused by the verifier with
``invalid_dpop_proof``, except ``wrong_key``, which a resource server refuses with
``invalid_token``, the token being bound to another key: :data:`BROKEN_PROOF_ERRORS`; the RFC
clause of each is in :data:`BROKEN_PROOFS_RFC`):

=================  ===========================================================
``wrong_htu``      ``htu`` names another origin (§4.3 item 9)
``wrong_htm``      ``htm`` names another method (§4.3 item 8)
``stale_iat``      ``iat`` older than ``attesto.dpop.max_age`` (§4.3 item 11)
``future_iat``     ``iat`` ten minutes ahead (§4.3 item 11, §11.1)
``wrong_ath``      ``ath`` is the hash of another access token (§4.3 item 12)
``missing_ath``    no ``ath`` although an access token is sent (§7.1)
``reused_jti``     the ``jti`` of this key's previous proof: a replay (§11.1)
``wrong_key``      signed by another key than the one the token is bound to (§4.3 item 12)
=================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from ._options import AttestoOptions
from ._quiet import quiet_imports

with quiet_imports():
    from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

    from pyramid_attesto.core.clock import Clock
    from pyramid_attesto.core.dpop import build_proof, compute_ath
    from pyramid_attesto.core.tokens import new_jti

__all__ = [
    "BROKEN_PROOFS",
    "BROKEN_PROOFS_RFC",
    "BROKEN_PROOF_ERRORS",
    "BrokenProof",
    "DPoPKey",
    "ProofFactory",
]

BrokenProof = Literal[
    "wrong_htu",
    "wrong_htm",
    "stale_iat",
    "future_iat",
    "wrong_ath",
    "missing_ath",
    "reused_jti",
    "wrong_key",
]
BROKEN_PROOFS: Final[tuple[BrokenProof, ...]] = get_args(BrokenProof)
"""Every kind of broken proof, for ``@pytest.mark.parametrize("broken", BROKEN_PROOFS)``."""
BROKEN_PROOFS_RFC: Final[Mapping[BrokenProof, str]] = {
    "wrong_htu": "RFC 9449 §4.3 item 9",
    "wrong_htm": "RFC 9449 §4.3 item 8",
    "stale_iat": "RFC 9449 §4.3 item 11",
    "future_iat": "RFC 9449 §11.1",
    "wrong_ath": "RFC 9449 §4.3 item 12",
    "missing_ath": "RFC 9449 §7.1",
    "reused_jti": "RFC 9449 §11.1",
    "wrong_key": "RFC 9449 §4.3 item 12",
}
BROKEN_PROOF_ERRORS: Final[Mapping[BrokenProof, str]] = {
    kind: "invalid_token" if kind == "wrong_key" else "invalid_dpop_proof" for kind in BROKEN_PROOFS
}
"""The error a resource server answers each broken proof with (status 401, RFC 9449 §7.1)."""
FUTURE_SECONDS: Final = 600
_WRONG_ORIGIN: Final = "https://wrong-htu.invalid"


def _generate(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    if alg in ("PS256", "RS256"):
        return RSAKey.generate_key(2048, private=True)
    raise ValueError(f"no DPoP test key for alg {alg!r} (ES256, EdDSA, PS256, RS256)")


@dataclass(frozen=True)
class DPoPKey:
    """A client's DPoP key pair: the joserfc private ``key``, its ``alg`` and ``jkt`` (the
    RFC 7638 thumbprint a bound token carries in ``cnf.jkt``, RFC 9449 §6.1)."""

    key: Key = field(repr=False)
    alg: str
    jkt: str

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        """A fresh key for ``alg`` (ES256, EdDSA, PS256 or RS256)."""
        key = _generate(alg)
        return cls(key=key, alg=alg, jkt=key.thumbprint())

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (what a proof's ``jwk`` header carries)."""
        return dict(self.key.as_dict(private=False))


class ProofFactory:
    """Builds DPoP proofs for one test: ``dpop_proof("GET", "/api/reports", access_token=t)``.

    ``url`` may be a path (it is joined to the test's ``base_url``) or an absolute URL; its
    query and fragment are dropped (§4.2). ``broken`` builds one of :data:`BROKEN_PROOFS`.
    """

    def __init__(self, key: DPoPKey, clock: Clock, options: AttestoOptions) -> None:
        self.key = key
        self.clock = clock
        self.options = options
        self._last_jti: dict[str, str] = {}

    def url(self, url: str) -> str:
        """The absolute URL of ``url`` (a path is joined to the test's ``base_url``)."""
        if urlsplit(url).scheme:
            return url
        return self.options.base_url + ("" if url.startswith("/") else "/") + url

    def __call__(
        self,
        method: str = "GET",
        url: str = "/",
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        key: DPoPKey | None = None,
        broken: BrokenProof | None = None,
        jti: str | None = None,
        iat: float | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A proof for ``method`` and ``url``; with ``access_token`` its ``ath`` (§4.2)."""
        key = key or self.key
        htm, htu = method.upper(), self.url(url)
        now = int(self.clock.now())
        claims: dict[str, Any] = dict(extra_claims or {})
        if broken is not None and broken not in BROKEN_PROOFS:
            raise ValueError(f"unknown broken proof {broken!r} (one of {BROKEN_PROOFS})")
        if broken == "wrong_htu":
            parts = urlsplit(htu)
            htu = _WRONG_ORIGIN + (parts.path or "/")
        elif broken == "wrong_htm":
            htm = "PATCH" if htm != "PATCH" else "PUT"
        elif broken == "stale_iat":
            iat = now - self.options.dpop_max_age - 5
        elif broken == "future_iat":
            iat = now + FUTURE_SECONDS
        elif broken in ("wrong_ath", "missing_ath"):
            if access_token is None:
                raise ValueError(f"a {broken} proof is for a request that sends a token")
            if broken == "wrong_ath":
                claims["ath"] = compute_ath(access_token + "-another-token")
            access_token = None
        elif broken == "reused_jti":
            jti = self._last_jti.get(key.jkt)
            if jti is None:
                raise ValueError("a reused_jti proof needs an earlier proof of the same key")
        elif broken == "wrong_key":
            key = DPoPKey.generate(key.alg)
        jti = jti if jti is not None else new_jti()
        proof = build_proof(
            key.key,
            htm,
            htu,
            access_token=access_token,
            nonce=nonce,
            jti=jti,
            iat=iat if iat is not None else now,
            alg=key.alg,
            extra_claims=claims or None,
        )
        if broken != "wrong_key":
            self._last_jti[key.jkt] = jti
        return proof
