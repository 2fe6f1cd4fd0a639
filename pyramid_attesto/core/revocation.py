"""Token revocation (RFC 7009) and token introspection (RFC 7662) at the authorization server.

Both find a presented token among the kinds this server issues, whatever ``token_type_hint``
says (RFC 7009 §2.1, RFC 7662 §2.1: the hint only orders the search; an unknown hint value
is ignored):

- a refresh token, looked up by hash in the :class:`~.stores.RefreshTokenStore`;
- an access token, verified as a JWT of this issuer (signature, ``typ``, times).

Revocation (:meth:`TokenAdministration.revoke`): only the client the token was issued to may
revoke it. A refresh token revokes its whole family (RFC 7009 §2.1, RFC 9700 §4.14.2); an
access token goes on the denylist until its ``exp`` (read by resource servers where
``attesto.revocation_check`` is on, D12). Unknown, invalid and other clients' tokens change
nothing and the answer is the same ``200`` (RFC 7009 §2.2: no oracle).

Introspection (:meth:`TokenAdministration.introspect`): the caller is an authenticated
confidential client; it sees a token when the token was issued to it, or when the host's
``may_introspect`` hook says so (resource servers introspecting their callers' tokens).
Anything else — unknown, expired, revoked, consumed, or not the caller's to see — is
``{"active": false}`` and nothing more (RFC 7662 §2.2).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Literal

from .client_auth import AuthenticatedClient, ClientAuthPolicy, client_auth_failure
from .clients import Client
from .clock import Clock
from .errors import InvalidRequest, InvalidToken
from .host import Event
from .introspection import (
    IntrospectionResponse,
    active_response,
    inactive_response,
    introspect_access_token,
)
from .keys import Keystore
from .stores import Stores
from .tokens import AccessToken, AccessTokenVerifier

__all__ = ["IntrospectionHook", "TokenAdministration", "TokenKind"]

TokenKind = Literal["access_token", "refresh_token"]
IntrospectionHook = Callable[[Client, IntrospectionResponse], bool]
"""``may_introspect(caller, response)``: whether ``caller`` may see an active token that was
issued to another client."""

_MAX_TOKEN = 16384


def _single(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"the {name} parameter is repeated", reason="repeated_parameter")
    return values[0] or None


def _order(hint: str | None) -> tuple[TokenKind, ...]:
    if hint == "refresh_token":
        return ("refresh_token", "access_token")
    return ("access_token", "refresh_token")


class TokenAdministration:
    """Revocation and introspection over the stores and this issuer's keys."""

    def __init__(
        self,
        keystore: Keystore,
        *,
        issuer: str,
        audiences: Collection[str],
        clock: Clock,
        emit: Callable[[Event], None],
        may_introspect: IntrospectionHook | None = None,
        client_auth: ClientAuthPolicy | None = None,
    ) -> None:
        self._client_auth = client_auth if client_auth is not None else ClientAuthPolicy()
        self._verifier = AccessTokenVerifier(
            keystore, issuer=issuer, audience=frozenset(audiences), clock=clock
        )
        self._clock = clock
        self._emit = emit
        self._may_introspect = may_introspect

    def _access_token(self, value: str) -> AccessToken | None:
        if value.count(".") != 2:
            return None
        try:
            return self._verifier.verify(value)
        except InvalidToken:
            return None

    # -- RFC 7009 -------------------------------------------------------------------------

    def revoke(
        self,
        form: Mapping[str, Sequence[str]],
        client: AuthenticatedClient,
        stores: Stores,
    ) -> None:
        """Revoke the presented token if ``client`` owns it; otherwise do nothing."""
        token = _single(form, "token")
        hint = _single(form, "token_type_hint")
        if token is None:
            raise InvalidRequest("the token parameter is required", reason="missing_token")
        if len(token) > _MAX_TOKEN:
            return
        for kind in _order(hint):
            if kind == "refresh_token":
                entry = stores.refresh_tokens.get(token)
                if entry is None:
                    continue
                if entry.grant.client_id == client.client_id:
                    stores.refresh_tokens.revoke_family(entry.family_id)
                    self._revoked(client, kind, entry.grant.subject)
                return
            access = self._access_token(token)
            if access is None:
                continue
            if access.client_id == client.client_id:
                stores.revoked_access_tokens.add(access.jti, access.expires_at)
                self._revoked(client, kind, access.subject, access.jti)
            return

    def _revoked(
        self, client: AuthenticatedClient, kind: TokenKind, subject: str, jti: str | None = None
    ) -> None:
        metadata: dict[str, object] = {"token_type_hint": kind}
        if jti is not None:
            metadata["jti"] = jti
        self._emit(
            Event("token_revoked", client_id=client.client_id, subject=subject, metadata=metadata)
        )

    # -- RFC 7662 -------------------------------------------------------------------------

    def introspect(
        self,
        form: Mapping[str, Sequence[str]],
        client: AuthenticatedClient,
        stores: Stores,
    ) -> IntrospectionResponse:
        """The RFC 7662 §2.2 response for the presented token, as ``client`` may see it."""
        if client.client.public:
            # RFC 7662 §2.1: the endpoint requires authorization; a public client has none.
            raise client_auth_failure(
                self._client_auth,
                "introspection needs an authenticated confidential client",
                "public_client",
            )
        token = _single(form, "token")
        hint = _single(form, "token_type_hint")
        if token is None:
            raise InvalidRequest("the token parameter is required", reason="missing_token")
        if len(token) > _MAX_TOKEN:
            return inactive_response()
        response = self._find(token, hint, stores)
        if not response["active"]:
            return response
        if response.get("client_id") != client.client_id and not (
            self._may_introspect is not None and self._may_introspect(client.client, response)
        ):
            return inactive_response()
        self._emit(
            Event(
                "introspected",
                client_id=client.client_id,
                subject=response.get("sub"),
                metadata={"token_client_id": response.get("client_id")},
            )
        )
        return response

    def _find(self, token: str, hint: str | None, stores: Stores) -> IntrospectionResponse:
        now = int(self._clock.now())
        for kind in _order(hint):
            if kind == "refresh_token":
                entry = stores.refresh_tokens.get(token)
                if entry is None:
                    continue
                if entry.consumed_at is not None or entry.expires_at <= now:
                    return inactive_response()
                grant = entry.grant
                return active_response(
                    client_id=grant.client_id,
                    scopes=grant.scope,
                    subject=grant.subject,
                    expires_at=entry.expires_at,
                    issued_at=entry.issued_at,
                    cnf={"jkt": grant.dpop_jkt} if grant.dpop_jkt else None,
                )
            access = self._access_token(token)
            if access is None:
                continue
            if stores.revoked_access_tokens.is_revoked(access.jti):
                return inactive_response()
            return introspect_access_token(access, clock=self._clock)
        return inactive_response()
