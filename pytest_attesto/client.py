"""``attesto_client``: a WebTest client that authenticates every request.

A client made by :meth:`AttestoClient.as_subject` (or :meth:`~AttestoClient.as_client`,
:meth:`~AttestoClient.with_token`) sends ``Authorization: Bearer <token>`` (RFC 6750 §2.1) or
``Authorization: DPoP <token>`` with a fresh proof in the ``DPoP`` header of every request
(RFC 9449 §7.1). When the server answers ``use_dpop_nonce`` with a ``DPoP-Nonce`` (RFC 9449
§8, §9) the request is sent once more with that nonce, and the nonce is kept for the next
requests, as a conforming client does. A request whose ``Authorization`` or ``DPoP`` header
the test sets itself is sent as it is, and never retried.

The request methods take WebTest's arguments (``params``, ``headers``, ``status``,
``expect_errors``, ...) and return WebTest responses; ``broken=`` sends one of the
deliberately broken proofs of :mod:`pytest_attesto.dpop`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ._options import AttestoOptions
from ._quiet import quiet_imports
from .asserts import oauth_error
from .dpop import BrokenProof, DPoPKey, ProofFactory
from .tokens import TokenFactory

__all__ = ["AttestoClient", "Credential", "make_testapp"]

Scheme = Literal["Bearer", "DPoP"]
_NOT_GIVEN: Any = object()


@dataclass(frozen=True)
class Credential:
    """What a client presents: ``token`` with ``scheme``; ``key`` signs its DPoP proofs."""

    token: str = field(repr=False)
    scheme: Scheme
    key: DPoPKey | None = None

    def __post_init__(self) -> None:
        if self.scheme not in ("Bearer", "DPoP"):
            raise ValueError("scheme must be 'Bearer' or 'DPoP'")
        if self.scheme == "DPoP" and self.key is None:
            raise ValueError("a DPoP credential needs the DPoP key that signs its proofs")


def make_testapp(app: Any, options: AttestoOptions) -> Any:
    """A ``webtest.TestApp`` for ``app`` (a WSGI app or a TestApp) addressed at
    ``options.base_url``: its scheme and host go into the environ unless the host's TestApp
    already sets them (its other environ, such as the cookiecutter's ``tm.manager`` and
    ``app.dbsession``, is kept)."""
    with quiet_imports():
        import webtest

    parts = urlsplit(options.base_url)
    environ: dict[str, Any] = {"wsgi.url_scheme": parts.scheme, "HTTP_HOST": parts.netloc}
    if isinstance(app, webtest.TestApp):
        return webtest.TestApp(
            app.app, extra_environ={**environ, **app.extra_environ}, cookiejar=app.cookiejar
        )
    if not callable(app):
        raise TypeError(f"attesto_app must return a WSGI app or a webtest.TestApp, not {app!r}")
    return webtest.TestApp(app, extra_environ=environ)


class AttestoClient:
    """Requests to the host's app, authenticated as the test says.

    ``attesto_client`` itself sends no credentials; ``attesto_client.as_subject("alice",
    scopes=["read:reports"], dpop=True)`` returns a client that does. Derived clients share
    the app, the cookies and the DPoP nonces.
    """

    def __init__(
        self,
        testapp: Any,
        *,
        tokens: TokenFactory,
        proofs: ProofFactory,
        credential: Credential | None = None,
        nonces: dict[str, str] | None = None,
    ) -> None:
        self.testapp = testapp
        """The underlying ``webtest.TestApp``."""
        self.tokens = tokens
        self.proofs = proofs
        self.credential = credential
        self._nonces: dict[str, str] = nonces if nonces is not None else {}

    # -- credentials ---------------------------------------------------------------------

    def _derive(self, credential: Credential | None) -> AttestoClient:
        return AttestoClient(
            self.testapp,
            tokens=self.tokens,
            proofs=self.proofs,
            credential=credential,
            nonces=self._nonces,
        )

    def as_subject(
        self,
        subject: str,
        *,
        scopes: str | Iterable[str] = (),
        dpop: bool = False,
        key: DPoPKey | None = None,
        **token_options: Any,
    ) -> AttestoClient:
        """A client presenting a fresh access token for the user ``subject``.

        ``dpop=True`` (or a ``key``) binds the token to the DPoP key (by default the test's
        ``dpop_key``) and signs a proof for every request; otherwise the token is a Bearer
        token. ``token_options`` go to :class:`~pytest_attesto.tokens.TokenFactory`
        (``client_id``, ``audience``, ``lifetime``, ``acr``, ``extra``, ...).
        """
        if key is None and dpop:
            key = self.proofs.key
        token = self.tokens(subject, scopes=scopes, dpop_key=key, **token_options)
        return self.with_token(token, key=key)

    def as_client(
        self,
        client_id: str | None = None,
        *,
        scopes: str | Iterable[str] = (),
        dpop: bool = False,
        key: DPoPKey | None = None,
        **token_options: Any,
    ) -> AttestoClient:
        """A client presenting a client-credentials token: its subject is the client itself
        (RFC 9068 §2.2) and its principal kind ``client`` (DESIGN.md D10)."""
        client_id = client_id or self.tokens.options.client_id
        token_options.setdefault("principal_kind", "client")
        return self.as_subject(
            client_id, scopes=scopes, dpop=dpop, key=key, client_id=client_id, **token_options
        )

    def with_token(
        self, token: str, *, key: DPoPKey | None = None, scheme: Scheme | None = None
    ) -> AttestoClient:
        """A client presenting ``token``: with DPoP proofs signed by ``key`` if one is given,
        else as a Bearer token. ``scheme="Bearer"`` with a DPoP-bound token is how a test
        checks that a bound token is not accepted as a Bearer token (RFC 9449 §7.2)."""
        if scheme is None:
            scheme = "DPoP" if key is not None else "Bearer"
        return self._derive(Credential(token, scheme, key if scheme == "DPoP" else None))

    def anonymous(self) -> AttestoClient:
        """A client that sends no credentials."""
        return self._derive(None)

    @property
    def token(self) -> str | None:
        """The access token this client presents, if any."""
        return self.credential.token if self.credential is not None else None

    @property
    def dpop_nonce(self) -> str | None:
        """The last ``DPoP-Nonce`` the app sent for the test's ``base_url``."""
        return self.nonce_for("/")

    def nonce_for(self, url: str) -> str | None:
        """The last ``DPoP-Nonce`` the app sent for the origin of ``url`` (a path: the
        ``base_url``'s), as RFC 9449 §8.2 keeps one nonce per server."""
        return self._nonces.get(self._origin(self.proofs.url(url)))

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def _origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    def auth_headers(
        self,
        method: str,
        url: str,
        *,
        broken: BrokenProof | None = None,
        dpop_key: DPoPKey | None = None,
    ) -> dict[str, str]:
        """The ``Authorization`` and ``DPoP`` headers for one request; with ``dpop_key``, only
        a proof of that key (no ``ath``), as at the token endpoint (RFC 9449 §5)."""
        credential = self.credential
        key = dpop_key
        headers: dict[str, str] = {}
        if dpop_key is None and credential is not None:
            headers["Authorization"] = f"{credential.scheme} {credential.token}"
            key = credential.key
        if key is None:
            if broken is not None:
                raise ValueError("a broken DPoP proof needs a DPoP client (as_subject(dpop=True))")
            return headers
        absolute = self.proofs.url(url)
        headers["DPoP"] = self.proofs(
            method,
            absolute,
            access_token=credential.token if dpop_key is None and credential else None,
            key=key,
            nonce=self._nonces.get(self._origin(absolute)),
            broken=broken,
        )
        return headers

    def _remember_nonce(self, url: str, response: Any) -> None:
        nonce = response.headers.get("DPoP-Nonce")
        if nonce:
            self._nonces[self._origin(self.proofs.url(url))] = nonce

    def request(
        self,
        method: str,
        url: str,
        *,
        json: bool = False,
        headers: dict[str, str] | None = None,
        broken: BrokenProof | None = None,
        dpop_key: DPoPKey | None = None,
        status: int | str | None = None,
        expect_errors: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Send ``method`` to ``url`` (a path, or an absolute URL of the app).

        ``json=True`` uses WebTest's ``*_json`` form (``params`` is JSON-encoded).
        ``dpop_key`` sends a proof of that key and no access token (a token request), beside
        whatever ``Authorization`` header ``headers`` has. Other keywords are WebTest's.
        Returns the WebTest response; as with WebTest, a status outside 2xx/3xx raises unless
        ``status`` or ``expect_errors`` says it is expected.
        """
        method = method.upper()
        verb = method.lower() + ("_json" if json else "")
        send = getattr(self.testapp, verb, None)
        if send is None:
            raise ValueError(f"WebTest has no {verb}() to send {method}")
        given = dict(headers or {})
        names = {name.lower() for name in given}
        ours = "dpop" not in names and (dpop_key is not None or "authorization" not in names)
        path = url.split("#", 1)[0]
        for attempt in (1, 2):
            sent = dict(given)
            if ours:
                sent.update(
                    self.auth_headers(
                        method, path.split("?", 1)[0], broken=broken, dpop_key=dpop_key
                    )
                )
            response = send(url, headers=sent, status="*", expect_errors=True, **kwargs)
            self._remember_nonce(path, response)
            if attempt == 1 and ours and "DPoP" in sent and self._nonce_asked(response, broken):
                continue
            break
        if not expect_errors:
            # WebTest's own status check and error reporting, as if it had sent the request.
            self.testapp._check_status(status, response)
            self.testapp._check_errors(response)
        return response

    @staticmethod
    def _nonce_asked(response: Any, broken: BrokenProof | None) -> bool:
        if broken is not None or not response.headers.get("DPoP-Nonce"):
            return False
        error = oauth_error(response)
        return error is not None and error.get("error") == "use_dpop_nonce"

    def get(self, url: str, **kwargs: Any) -> Any:
        """``GET url`` (see :meth:`request`)."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Any:
        """``HEAD url`` (see :meth:`request`)."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Any:
        """``OPTIONS url`` (see :meth:`request`)."""
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str, params: Any = "", **kwargs: Any) -> Any:
        """``POST url`` with a form (or raw) body (see :meth:`request`)."""
        return self.request("POST", url, params=params, **kwargs)

    def put(self, url: str, params: Any = "", **kwargs: Any) -> Any:
        """``PUT url`` (see :meth:`request`)."""
        return self.request("PUT", url, params=params, **kwargs)

    def patch(self, url: str, params: Any = "", **kwargs: Any) -> Any:
        """``PATCH url`` (see :meth:`request`)."""
        return self.request("PATCH", url, params=params, **kwargs)

    def delete(self, url: str, params: Any = "", **kwargs: Any) -> Any:
        """``DELETE url`` (see :meth:`request`)."""
        return self.request("DELETE", url, params=params, **kwargs)

    def post_json(self, url: str, params: Any = _NOT_GIVEN, **kwargs: Any) -> Any:
        """``POST url`` with a JSON body (see :meth:`request`)."""
        if params is not _NOT_GIVEN:
            kwargs["params"] = params
        return self.request("POST", url, json=True, **kwargs)

    def put_json(self, url: str, params: Any = _NOT_GIVEN, **kwargs: Any) -> Any:
        """``PUT url`` with a JSON body (see :meth:`request`)."""
        if params is not _NOT_GIVEN:
            kwargs["params"] = params
        return self.request("PUT", url, json=True, **kwargs)

    def patch_json(self, url: str, params: Any = _NOT_GIVEN, **kwargs: Any) -> Any:
        """``PATCH url`` with a JSON body (see :meth:`request`)."""
        if params is not _NOT_GIVEN:
            kwargs["params"] = params
        return self.request("PATCH", url, json=True, **kwargs)
