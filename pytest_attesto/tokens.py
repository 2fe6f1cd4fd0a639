"""Minting access tokens and ID tokens for tests (``attesto_token``).

Every token is signed by :class:`~pyramid_attesto.core.tokens.AccessTokenMinter` or
:class:`~pyramid_attesto.core.idtoken.IDTokenMinter` with the test keystore and the test
clock, so it is exactly what the authorization server would issue (RFC 9068 §2, OpenID
Connect Core §2): a token the app refuses is a finding about the app, never about the fixture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._options import AttestoOptions, TokenAlgorithm
from ._quiet import quiet_imports

with quiet_imports():
    from pyramid_attesto.core.clock import Clock, FrozenClock
    from pyramid_attesto.core.idtoken import IDTokenClaims, IDTokenMinter
    from pyramid_attesto.core.keys import Keystore
    from pyramid_attesto.core.tokens import (
        DEFAULT_ACCESS_TOKEN_LIFETIME,
        AccessTokenClaims,
        AccessTokenMinter,
        MintedToken,
    )

if TYPE_CHECKING:
    from .dpop import DPoPKey

__all__ = ["TokenFactory"]


def _scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    return tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)


class TokenFactory:
    """Mints tokens for one test: ``attesto_token("alice", scopes=["read:reports"])``.

    Calling it returns the compact JWT; :meth:`mint` returns the
    :class:`~pyramid_attesto.core.tokens.MintedToken` (``jti``, times); :meth:`expired`
    mints one that the resource server already refuses; :meth:`id_token` mints an ID token.
    """

    def __init__(self, keystore: Keystore, clock: Clock, options: AttestoOptions) -> None:
        self.keystore = keystore
        self.clock = clock
        self.options = options

    def __call__(
        self,
        subject: str = "alice",
        *,
        scopes: str | Iterable[str] = (),
        client_id: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
        jkt: str | None = None,
        dpop_key: DPoPKey | None = None,
        cnf: Mapping[str, str] | None = None,
        acr: str | None = None,
        amr: Iterable[str] = (),
        auth_time: int | None = None,
        principal_kind: str | None = "user",
        extra: Mapping[str, Any] | None = None,
        alg: TokenAlgorithm | None = None,
    ) -> str:
        """An access token for ``subject``.

        ``scopes`` is a list or a space-separated string. ``jkt`` (or ``dpop_key``, whose
        thumbprint is taken) binds the token to a DPoP key (``cnf.jkt``, RFC 9449 §6.1);
        ``cnf`` gives the whole confirmation (``{"x5t#S256": ...}`` for mTLS, RFC 8705 §3.1).
        ``client_id``, ``audience`` and ``issuer`` default to the test's options; ``extra``
        adds claims (``roles``, ...).
        """
        return self.mint(
            subject,
            scopes=scopes,
            client_id=client_id,
            audience=audience,
            issuer=issuer,
            lifetime=lifetime,
            jkt=jkt,
            dpop_key=dpop_key,
            cnf=cnf,
            acr=acr,
            amr=amr,
            auth_time=auth_time,
            principal_kind=principal_kind,
            extra=extra,
            alg=alg,
        ).token

    def mint(
        self,
        subject: str = "alice",
        *,
        scopes: str | Iterable[str] = (),
        client_id: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
        jkt: str | None = None,
        dpop_key: DPoPKey | None = None,
        cnf: Mapping[str, str] | None = None,
        acr: str | None = None,
        amr: Iterable[str] = (),
        auth_time: int | None = None,
        principal_kind: str | None = "user",
        extra: Mapping[str, Any] | None = None,
        alg: TokenAlgorithm | None = None,
        clock: Clock | None = None,
    ) -> MintedToken:
        """As calling the factory, returning the :class:`MintedToken`; ``clock`` mints at
        another time than the test's clock."""
        if dpop_key is not None:
            if jkt is not None and jkt != dpop_key.jkt:
                raise ValueError("jkt and dpop_key name different keys")
            jkt = dpop_key.jkt
        if jkt is not None:
            if cnf is not None:
                raise ValueError("give cnf or jkt/dpop_key, not both")
            cnf = {"jkt": jkt}
        claims = AccessTokenClaims(
            subject=subject,
            client_id=client_id or self.options.client_id,
            audience=audience or self.options.audience,
            scopes=_scopes(scopes),
            cnf=cnf,
            auth_time=auth_time,
            acr=acr,
            amr=tuple(amr),
            principal_kind=principal_kind,
            extra=dict(extra or {}),
        )
        minter = AccessTokenMinter(
            self.keystore,
            issuer=issuer or self.options.issuer,
            clock=clock or self.clock,
            algorithm=alg if alg is not None else self.options.token_alg,
        )
        return minter.mint(claims, lifetime=lifetime)

    def expired(self, subject: str = "alice", **kwargs: Any) -> str:
        """An access token whose ``exp`` passed longer ago than the resource server's leeway
        (``attesto.access_token_leeway``), otherwise as :meth:`__call__`: RFC 9068 §4 says
        to refuse it with ``invalid_token``."""
        lifetime = int(kwargs.pop("lifetime", 60))
        then = self.clock.now() - lifetime - self.options.access_token_leeway - 1
        return self.mint(subject, lifetime=lifetime, clock=FrozenClock(then), **kwargs).token

    def id_token(
        self,
        subject: str = "alice",
        *,
        client_id: str | None = None,
        nonce: str | None = None,
        auth_time: int | None = None,
        acr: str | None = None,
        amr: Iterable[str] = (),
        access_token: str | None = None,
        code: str | None = None,
        extra: Mapping[str, Any] | None = None,
        lifetime: int = 600,
        alg: TokenAlgorithm | None = None,
    ) -> str:
        """An ID token (OpenID Connect Core §2) for ``subject``, audience ``client_id``,
        signed with RS256 unless ``alg`` says otherwise (§15.1); ``access_token`` and ``code``
        give ``at_hash`` and ``c_hash``."""
        claims = IDTokenClaims(
            subject=subject,
            client_id=client_id or self.options.client_id,
            nonce=nonce,
            auth_time=auth_time,
            acr=acr,
            amr=tuple(amr),
            access_token=access_token,
            code=code,
            extra=dict(extra or {}),
        )
        minter = IDTokenMinter(
            self.keystore, issuer=self.options.issuer, clock=self.clock, lifetime=lifetime
        )
        return minter.mint(claims, alg=alg).token
