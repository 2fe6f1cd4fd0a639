"""Flows against the host's authorization server (``attesto_flow``, ``attesto_clients``,
``attesto_consent``).

For an app that runs the authorization server (``config.include("pyramid_attesto")``) with
the test client store and the test consent policy wired in::

    config.set_attesto_client_store(attesto_clients)
    config.set_attesto_consent_policy(attesto_consent)

``attesto_flow`` registers test clients and runs the flows a client runs, through the app's
real endpoints: the authorization request with PKCE S256 (RFC 6749 §4.1.1, RFC 7636 §4.3)
answered by an auto-consenting test user, the checks of the response (``state``, RFC 9207
``iss``), the token request (RFC 6749 §4.1.3) with client authentication and, with a DPoP
key, a proof (RFC 9449 §5) and the ``use_dpop_nonce`` retry (§8); refresh (§6) and
client credentials (§4.4). Endpoints come from the server's own metadata (RFC 8414 §3), as a
client finds them. Everything goes through the client's WebTest app, so under the Pyramid
cookiecutter's test transaction every row the flow writes (codes, refresh tokens, replay
records) lives in that transaction.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from ._options import AttestoOptions
from ._quiet import quiet_imports
from .client import AttestoClient
from .dpop import DPoPKey

with quiet_imports():
    from pyramid_attesto.core.authorize import Authenticated, PendingAuthorization
    from pyramid_attesto.core.clients import Client, ClientStore
    from pyramid_attesto.core.clock import Clock
    from pyramid_attesto.core.secret import constant_time_equals, hash_secret, sha256_b64url

__all__ = [
    "AuthorizationCode",
    "AuthorizationServerFlow",
    "FlowError",
    "RegisteredClient",
    "TestClients",
    "TestConsent",
    "TokenResponse",
]

PUBLIC_REDIRECT_URI = "http://127.0.0.1/callback"
CONFIDENTIAL_REDIRECT_URI = "https://client.example/callback"


class FlowError(AssertionError):
    """A flow step did not go as a conforming client expects (the message says how)."""


@dataclass(frozen=True)
class RegisteredClient:
    """A client registered in :class:`TestClients`, with its secret (confidential only)."""

    client: Client
    secret: str | None = field(default=None, repr=False)

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def redirect_uri(self) -> str:
        """The first registered redirect URI (the flows use it)."""
        return self.client.redirect_uris[0]

    @property
    def public(self) -> bool:
        return self.secret is None


class TestClients:
    """A :class:`~pyramid_attesto.core.clients.ClientStore` of test clients, in memory.

    Clients it does not know are looked up in ``fallback`` (the host's own store), so a host
    can keep its clients and add test ones. Secrets are kept as hashes and compared in
    constant time, as a real store must (DESIGN.md rule 4).
    """

    __test__ = False

    def __init__(
        self, fallback: ClientStore | None = None, *, default_scope: str | None = None
    ) -> None:
        self.fallback = fallback
        self.default_scope = default_scope
        self._clients: dict[str, Client] = {}
        self._hashes: dict[str, str] = {}

    def reset(self, *, default_scope: str | None = None) -> None:
        """Forget every registered client (the fallback stays)."""
        self.default_scope = default_scope
        self._clients.clear()
        self._hashes.clear()

    def register(
        self,
        client_id: str | None = None,
        *,
        public: bool = True,
        scopes: str | Iterable[str] | None = None,
        redirect_uris: Iterable[str] | None = None,
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        dpop_bound_access_tokens: bool = False,
        **metadata: Any,
    ) -> RegisteredClient:
        """Register a client and return it (with its generated secret when confidential).

        A public client is a native app with a loopback redirect URI (RFC 8252 §7.3) and
        ``token_endpoint_auth_method=none``; a confidential one a web app authenticating
        with ``client_secret_basic``. ``scopes`` defaults to the store's ``default_scope``
        (``attesto.scopes_supported``); ``metadata`` is any other
        :class:`~pyramid_attesto.core.clients.Client` field.
        """
        client_id = client_id or f"test-client-{len(self._clients) + 1}"
        if client_id in self._clients:
            raise ValueError(f"client {client_id!r} is registered already")
        scope = scopes if isinstance(scopes, str) or scopes is None else " ".join(scopes)
        if public:
            metadata.setdefault("token_endpoint_auth_method", "none")
            metadata.setdefault("application_type", "native")
        uris = tuple(
            redirect_uris or (PUBLIC_REDIRECT_URI if public else CONFIDENTIAL_REDIRECT_URI,)
        )
        client = Client(
            client_id=client_id,
            redirect_uris=uris,
            grant_types=tuple(grant_types),
            scope=scope if scope is not None else self.default_scope,
            dpop_bound_access_tokens=dpop_bound_access_tokens,
            **metadata,
        )
        method = client.token_endpoint_auth_method
        secret = None if method == "none" else secrets.token_urlsafe(32)
        self._clients[client_id] = client
        if secret is not None:
            self._hashes[client_id] = hash_secret(secret)
        return RegisteredClient(client, secret)

    def load_client(self, client_id: str) -> Client | None:
        found = self._clients.get(client_id)
        if found is None and self.fallback is not None:
            return self.fallback.load_client(client_id)
        return found

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        expected = self._hashes.get(client.client_id)
        if expected is None:
            if self.fallback is not None and client.client_id not in self._clients:
                return self.fallback.verify_client_secret(client, secret)
            return False
        return constant_time_equals(hash_secret(secret), expected)

    def client_secret_for_jwt(self, client: Client) -> str | None:
        if self.fallback is not None and client.client_id not in self._clients:
            return self.fallback.client_secret_for_jwt(client)
        return None


class TestConsent:
    """A :class:`~pyramid_attesto.core.host.ConsentPolicy` for tests: the user logged in with
    :meth:`login` is authenticated (``auth_time`` is the test clock's now at login) and
    consents to everything, unless ``grant`` is set to ``False`` (``access_denied``). Without
    a logged-in user, authentication answers ``None`` (``login_required``).

    Every :class:`~pyramid_attesto.core.authorize.PendingAuthorization` it saw is in
    :attr:`seen`, for assertions on what the server validated.
    """

    __test__ = False

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.user: Authenticated | None = None
        self.grant = True
        self.seen: list[PendingAuthorization] = []

    def login(self, subject: str, *, acr: str | None = None, auth_time: int | None = None) -> None:
        """Log ``subject`` in (now, unless ``auth_time`` says when)."""
        when = auth_time if auth_time is not None else int(self.clock.now())
        self.user = Authenticated(subject, auth_time=when, acr=acr)

    def logout(self) -> None:
        self.user = None

    def reset(self) -> None:
        """Nobody logged in, consent granted, nothing seen."""
        self.user = None
        self.grant = True
        self.seen.clear()

    def authenticate_resource_owner(
        self, request: Any, authorization: PendingAuthorization
    ) -> object:
        self.seen.append(authorization)
        return self.user

    def consent(self, request: Any, authorization: PendingAuthorization, subject: str) -> object:
        return self.grant


@dataclass(frozen=True)
class AuthorizationCode:
    """A successful authorization response (RFC 6749 §4.1.2) and what redeeming it needs."""

    code: str = field(repr=False)
    state: str
    iss: str | None
    redirect_uri: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class TokenResponse:
    """A successful token response (RFC 6749 §5.1); ``key`` is the DPoP key the access token
    is bound to (RFC 9449 §5), if any."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None
    scopes: tuple[str, ...]
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    key: DPoPKey | None = None
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencode both, then Basic."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode("ascii")


def _scopes(scopes: str | Iterable[str]) -> str:
    return scopes if isinstance(scopes, str) else " ".join(scopes)


class AuthorizationServerFlow:
    """Runs OAuth flows against the app's authorization server (see the module docstring)."""

    def __init__(
        self,
        client: AttestoClient,
        clients: TestClients,
        consent: TestConsent,
        options: AttestoOptions,
    ) -> None:
        self.client = client.anonymous()
        self.clients = clients
        self.consent = consent
        self.options = options
        self._metadata: dict[str, Any] | None = None

    # -- discovery -----------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The server's RFC 8414 metadata (fetched once, from the path-inserted location)."""
        if self._metadata is None:
            issuer_path = urlsplit(self.options.issuer).path.rstrip("/")
            url = "/.well-known/oauth-authorization-server" + issuer_path
            response = self.client.get(url, expect_errors=True)
            if response.status_int != 200:
                raise FlowError(
                    f"GET {url} answered {response.status_int}: does the app include "
                    "pyramid_attesto (the authorization server), with attesto_clients as "
                    "its client store?"
                )
            self._metadata = dict(response.json)
        return self._metadata

    def endpoint(self, name: str) -> str:
        """The URL of an endpoint named in metadata (``token_endpoint``, ...)."""
        url = self.metadata().get(name)
        if not isinstance(url, str):
            raise FlowError(f"the server's metadata has no {name}: is it mounted?")
        return url

    # -- clients -------------------------------------------------------------------------

    def register_client(self, client_id: str | None = None, **kwargs: Any) -> RegisteredClient:
        """Register a test client (see :meth:`TestClients.register`)."""
        return self.clients.register(client_id, **kwargs)

    # -- authorization endpoint ------------------------------------------------------------

    def authorization_request(
        self,
        client: RegisteredClient,
        subject: str | None = "alice",
        *,
        scopes: str | Iterable[str] = (),
        code_verifier: str | None = None,
        state: str | None = None,
        **params: str,
    ) -> Any:
        """Send the authorization request (RFC 6749 §4.1.1) with ``subject`` logged in
        (``None``: nobody) and return the raw WebTest response. ``params`` are more request
        parameters (``resource``, ``nonce``, ``prompt``, ``max_age``, ``dpop_jkt``, ...)."""
        verifier = code_verifier or secrets.token_urlsafe(48)
        query = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "state": state or secrets.token_urlsafe(12),
            "code_challenge": sha256_b64url(verifier),
            "code_challenge_method": "S256",
            **params,
        }
        scope = _scopes(scopes)
        if scope:
            query["scope"] = scope
        if subject is None:
            self.consent.logout()
        else:
            self.consent.login(subject)
        return self.client.get(
            self.endpoint("authorization_endpoint"), params=query, expect_errors=True
        )

    def authorize(
        self,
        client: RegisteredClient,
        subject: str = "alice",
        *,
        scopes: str | Iterable[str] = (),
        **params: str,
    ) -> AuthorizationCode:
        """Run the authorization request and check its response as a client must: a redirect
        to the client's redirect URI with the same ``state`` and the issuer's ``iss``
        (RFC 9207 §2.4). Raises :class:`FlowError` otherwise (an error response included)."""
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(12)
        response = self.authorization_request(
            client, subject, scopes=scopes, code_verifier=verifier, state=state, **params
        )
        location = response.headers.get("Location", "")
        if response.status_int not in (302, 303) or not location.startswith(
            client.redirect_uri + "?"
        ):
            raise FlowError(
                f"the authorization request answered {response.status_int} "
                f"{location or response.text[:200]!r}, not a redirect to {client.redirect_uri}"
            )
        answer = dict(parse_qsl(urlsplit(location).query))
        if "error" in answer:
            raise FlowError(
                f"the authorization request failed: {answer['error']} "
                f"({answer.get('error_description', '')})"
            )
        if answer.get("state") != state:
            raise FlowError("the authorization response does not return the state (RFC 6749)")
        if answer.get("iss") != self.options.issuer:
            raise FlowError(f"the authorization response iss is {answer.get('iss')!r} (RFC 9207)")
        return AuthorizationCode(
            code=answer["code"],
            state=state,
            iss=answer.get("iss"),
            redirect_uri=client.redirect_uri,
            code_verifier=verifier,
        )

    # -- token endpoint ----------------------------------------------------------------------

    def token_request(
        self,
        client: RegisteredClient,
        form: Mapping[str, str],
        *,
        key: DPoPKey | None = None,
        **kwargs: Any,
    ) -> Any:
        """POST ``form`` to the token endpoint with the client's authentication (Basic for a
        confidential client, ``client_id`` in the form for a public one) and, with ``key``, a
        DPoP proof (retried once on ``use_dpop_nonce``). Returns the raw WebTest response;
        ``kwargs`` go to WebTest (``status=400``, ...)."""
        body = dict(form)
        headers: dict[str, str] = {}
        if client.secret is None:
            body.setdefault("client_id", client.client_id)
        else:
            headers["Authorization"] = _basic(client.client_id, client.secret)
        kwargs.setdefault("expect_errors", "status" not in kwargs)
        # The absolute URL: the proof's htu is the token endpoint's, wherever the API is.
        url = self.endpoint("token_endpoint")
        return self.client.post(url, body, headers=headers, dpop_key=key, **kwargs)

    def _tokens(self, response: Any, key: DPoPKey | None) -> TokenResponse:
        if response.status_int != 200:
            raise FlowError(f"the token request answered {response.status_int}: {response.text}")
        body = dict(response.json)
        token_type = str(body.get("token_type", ""))
        if (key is not None) != (token_type.lower() == "dpop"):
            raise FlowError(
                f"token_type {token_type!r} for a request {'with' if key else 'without'} DPoP"
            )
        return TokenResponse(
            access_token=body["access_token"],
            token_type=token_type,
            expires_in=body.get("expires_in"),
            scopes=tuple(str(body.get("scope", "")).split()),
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            key=key,
            body=body,
        )

    def _key(self, dpop: bool, key: DPoPKey | None) -> DPoPKey | None:
        return key if key is not None else (self.client.proofs.key if dpop else None)

    def exchange(
        self,
        client: RegisteredClient,
        code: AuthorizationCode,
        *,
        dpop: bool = False,
        key: DPoPKey | None = None,
        **form: str,
    ) -> TokenResponse:
        """Redeem ``code`` (RFC 6749 §4.1.3, RFC 7636 §4.5); ``dpop`` binds the tokens to
        ``dpop_key`` (or ``key``)."""
        key = self._key(dpop, key)
        request = {
            "grant_type": "authorization_code",
            "code": code.code,
            "redirect_uri": code.redirect_uri,
            "code_verifier": code.code_verifier,
            **form,
        }
        return self._tokens(self.token_request(client, request, key=key), key)

    def tokens(
        self,
        client: RegisteredClient,
        subject: str = "alice",
        *,
        scopes: str | Iterable[str] = (),
        dpop: bool = False,
        key: DPoPKey | None = None,
        resource: str | None = None,
        **params: str,
    ) -> TokenResponse:
        """Authorize ``subject`` (auto-consenting) and redeem the code: the whole code flow.
        ``resource`` (RFC 8707) goes into both requests; ``params`` into the authorization
        request."""
        if resource is not None:
            params["resource"] = resource
        code = self.authorize(client, subject, scopes=scopes, **params)
        extra = {"resource": resource} if resource is not None else {}
        return self.exchange(client, code, dpop=dpop, key=key, **extra)

    def refresh(
        self,
        client: RegisteredClient,
        refresh_token: str,
        *,
        key: DPoPKey | None = None,
        scopes: str | Iterable[str] | None = None,
        **form: str,
    ) -> TokenResponse:
        """Refresh (RFC 6749 §6); a DPoP-bound refresh token needs its ``key`` (RFC 9449 §5)."""
        request = {"grant_type": "refresh_token", "refresh_token": refresh_token, **form}
        if scopes is not None:
            request["scope"] = _scopes(scopes)
        return self._tokens(self.token_request(client, request, key=key), key)

    def client_credentials(
        self,
        client: RegisteredClient,
        *,
        scopes: str | Iterable[str] = (),
        dpop: bool = False,
        key: DPoPKey | None = None,
        **form: str,
    ) -> TokenResponse:
        """The client credentials grant (RFC 6749 §4.4) for a confidential client."""
        key = self._key(dpop, key)
        request = {"grant_type": "client_credentials", **form}
        scope = _scopes(scopes)
        if scope:
            request["scope"] = scope
        return self._tokens(self.token_request(client, request, key=key), key)

    def client_for(self, tokens: TokenResponse) -> AttestoClient:
        """An :class:`~pytest_attesto.client.AttestoClient` presenting ``tokens``' access
        token (with DPoP proofs of its key when it is bound)."""
        return self.client.with_token(tokens.access_token, key=tokens.key)
