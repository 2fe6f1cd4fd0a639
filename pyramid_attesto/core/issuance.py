"""Host decisions about what the token endpoint issues: when a refresh token comes with the
access token (RFC 6749 §1.5, §4.1.4, §6), and which RFC 8707 resources a client may name.

- :class:`RefreshTokenPolicy` (``attesto.refresh_token_policy``): the default,
  :class:`DefaultRefreshTokenPolicy`, issues one when the client is registered for the
  ``refresh_token`` grant or ``offline_access`` was granted (OIDC Core §11). Some MCP clients
  never ask for ``offline_access`` and still expect refresh tokens (DESIGN.md "What real
  clients do"), hence the registered grant alone suffices.
- :class:`ClientResourcePolicy` (``attesto.client_resource_policy``): narrows the global RFC 8707
  allow-list (``attesto.resources``) per client. It is asked only about a resource the
  allow-list already accepts; ``False`` is ``invalid_target`` (RFC 8707 §2).

Both are typed :class:`~typing.Protocol` classes a host implements with a plain class, an
instance or a module of functions (:mod:`pyramid_attesto.hostpolicy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .clients import Client

__all__ = ["ClientResourcePolicy", "DefaultRefreshTokenPolicy", "RefreshTokenPolicy"]


class RefreshTokenPolicy(Protocol):
    """Decides whether a refresh token is issued with an access token.

    Called at code redemption (``grant_type`` ``authorization_code``) once the code, PKCE
    and the DPoP proof verified; ``scopes`` are the granted scopes and ``subject`` the user.
    A rotation (``refresh_token`` grant) always returns the family's successor and does not
    ask. The token endpoint issues no refresh token while the ``refresh_token`` grant is not
    served (``attesto.grant_types_supported``), whatever this returns; a client not
    registered for that grant cannot redeem the token it gets (``unauthorized_client``).
    """

    def issue_refresh_token(
        self, client: Client, scopes: Sequence[str], *, subject: str, grant_type: str
    ) -> bool:
        """``True``: issue a refresh token to ``client`` for ``subject`` and ``scopes``."""
        ...


class DefaultRefreshTokenPolicy:
    """The default :class:`RefreshTokenPolicy`: the client is registered for the
    ``refresh_token`` grant, or ``offline_access`` was granted."""

    def issue_refresh_token(
        self, client: Client, scopes: Sequence[str], *, subject: str, grant_type: str
    ) -> bool:
        return "refresh_token" in client.grant_types or "offline_access" in scopes


class ClientResourcePolicy(Protocol):
    """Narrows the RFC 8707 allow-list per client.

    ``resource`` is a ``resource`` indicator already on the global allow-list
    (``attesto.resources``, the default resource or the issuer), exactly as the client sent
    it. Asked at the authorization and PAR endpoints for each ``resource`` parameter, and at
    the token endpoint for the audience of every ``client_credentials``, code redemption and
    refresh request that names a resource (sent with the request or carried by the grant), so
    that a withdrawn resource stops working at the next refresh. ``False`` refuses the request
    with ``invalid_target`` (RFC 8707 §2). A token requested without any ``resource`` gets
    the default audience and is not asked about.
    """

    def allow_resource(self, client: Client, resource: str) -> bool:
        """``True``: ``client`` may obtain tokens whose audience is ``resource``."""
        ...
