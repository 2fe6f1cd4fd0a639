"""The demo's host policy: its users, its clients, its consent records, its login and consent
pages (through :mod:`.pages`), and its claims. Everything here goes through the public API
(:mod:`pyramid_attesto.core.clients`, :mod:`pyramid_attesto.core.host`).

Passwords are kept as scrypt hashes (RFC 7914), client secrets as SHA-256 hashes of
high-entropy secrets (:func:`~pyramid_attesto.core.secret.hash_secret`); both are compared in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyramid_attesto.core.authorize import Authenticated, PendingAuthorization
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.host import Principal
from pyramid_attesto.core.secret import constant_time_equals, hash_secret, sha256_b64url

from . import pages

__all__ = [
    "CLIENTS",
    "CONFIDENTIAL_CLIENT_ID",
    "CONFIDENTIAL_CLIENT_SECRET",
    "PUBLIC_CLIENT_ID",
    "USERS",
    "ConsentRecords",
    "DemoClaims",
    "DemoClients",
    "DemoConsent",
    "DemoPrincipals",
    "User",
    "check_password",
]

SESSION_USER = "demo.user"
SESSION_AUTH_TIME = "demo.auth_time"
SESSION_FRESH_LOGIN = "demo.fresh_login"
SESSION_DENIED = "demo.denied"
SESSION_PENDING = "demo.pending"


@dataclass(frozen=True, slots=True)
class User:
    """A demo user: the ``sub`` is the username; the password is kept as an scrypt hash."""

    username: str
    name: str
    email: str
    salt: str
    password_hash: str


USERS: Mapping[str, User] = {
    "alice": User(
        "alice",
        "Alice Liddell",
        "alice@example.com",
        "BXS/AFUVc/s4vVqFIDKjcA==",
        "v6svb3wHjzfvNWtYL6mNLUPXqATxjXx52CX9oH8XLZo=",
    ),
    "bob": User(
        "bob",
        "Bob the Builder",
        "bob@example.com",
        "kLxJMO9IebNtFbmMDGBbzw==",
        "yw0ngP4iwYaUx8HD28+dv3/hZddounM+6kb5Ec+CbiM=",
    ),
}
"""The demo users; their passwords (``wonderland``, ``builder``) are printed on the login page."""

DEMO_PASSWORDS = {"alice": "wonderland", "bob": "builder"}
"""Shown on the login page (this is a demo); never used for checking."""


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


def check_password(username: str, password: str) -> User | None:
    """The user whose password this is, or ``None`` (constant time per attempt)."""
    user = USERS.get(username)
    salt = base64.b64decode(user.salt) if user else b"\0" * 16
    computed = _scrypt(password[:256], salt)
    if user is None:
        return None
    expected = base64.b64decode(user.password_hash)
    return user if hmac.compare_digest(computed, expected) else None


CONFIDENTIAL_CLIENT_ID = "demo-web"
CONFIDENTIAL_CLIENT_SECRET = "demo-web-secret-do-not-use-in-production"  # noqa: S105 - a demo
PUBLIC_CLIENT_ID = "demo-cli"
_SECRET_HASHES = {CONFIDENTIAL_CLIENT_ID: hash_secret(CONFIDENTIAL_CLIENT_SECRET)}


def make_clients(origin: str) -> dict[str, Client]:
    """The seeded clients: a confidential web app (redirecting to the demo's own
    ``/callback``) and a public native app (loopback redirect, any port, RFC 8252 §7.3)."""
    return {
        CONFIDENTIAL_CLIENT_ID: Client(
            client_id=CONFIDENTIAL_CLIENT_ID,
            client_name="Demo Web App",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106
            redirect_uris=(f"{origin}/callback",),
            grant_types=("authorization_code", "refresh_token", "client_credentials"),
            scope="openid profile email offline_access read:reports",
        ),
        PUBLIC_CLIENT_ID: Client(
            client_id=PUBLIC_CLIENT_ID,
            client_name="Demo Command-Line App",
            token_endpoint_auth_method="none",  # noqa: S106 - not a password
            application_type="native",
            redirect_uris=("http://127.0.0.1/callback",),
            grant_types=("authorization_code", "refresh_token"),
            scope="openid profile offline_access read:reports",
        ),
    }


CLIENTS = make_clients("http://127.0.0.1:6543")


class DemoClients:
    """The demo's :class:`~pyramid_attesto.core.clients.ClientStore`: the two seeded clients.

    Dynamically registered clients and Client ID Metadata Documents (both on in demo.ini) are
    looked up by the authorization server after this store, so it holds only the seeded ones.
    """

    def __init__(self, clients: Mapping[str, Client]) -> None:
        self.clients = dict(clients)

    def load_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        expected = _SECRET_HASHES.get(client.client_id)
        return expected is not None and constant_time_equals(hash_secret(secret), expected)

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return None


class DemoPrincipals:
    """The demo's :class:`~pyramid_attesto.core.host.PrincipalStore`."""

    def load_principal(self, subject: str) -> Principal | None:
        user = USERS.get(subject)
        if user is None:
            return None
        return Principal(subject, claims={"name": user.name, "email": user.email})


class DemoClaims:
    """The demo's :class:`~pyramid_attesto.core.host.ClaimsProvider` (OIDC Core §5.4)."""

    def userinfo_claims(
        self, subject: str, scopes: Sequence[str], requested: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        user = USERS.get(subject)
        claims: dict[str, Any] = {}
        if user is None:
            return claims
        if "profile" in scopes:
            claims["name"] = user.name
            claims["preferred_username"] = user.username
        if "email" in scopes:
            claims["email"] = user.email
            claims["email_verified"] = True
        return claims

    def id_token_claims(
        self, client: Client, subject: str, scopes: Sequence[str], requested: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        return self.userinfo_claims(subject, scopes, requested)


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A remembered consent: bound to the scopes, the resources and the redirect URI it was
    given for (DESIGN.md D16), so a broader request asks again."""

    subject: str
    client_id: str
    scopes: tuple[str, ...]
    resources: tuple[str, ...]
    redirect_uri: str
    granted_at: int

    def covers(self, scopes: Sequence[str], resources: Sequence[str], redirect_uri: str) -> bool:
        return (
            redirect_uri == self.redirect_uri
            and set(scopes) <= set(self.scopes)
            and set(resources) <= set(self.resources)
        )


class ConsentRecords:
    """Remembered consents, kept in a JSON file (the demo runs as one process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return data if isinstance(data, list) else []

    def _write(self, records: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def for_subject(self, subject: str) -> list[ConsentRecord]:
        with self._lock:
            return [
                ConsentRecord(
                    subject=r["subject"],
                    client_id=r["client_id"],
                    scopes=tuple(r["scopes"]),
                    resources=tuple(r["resources"]),
                    redirect_uri=r["redirect_uri"],
                    granted_at=int(r["granted_at"]),
                )
                for r in self._read()
                if r.get("subject") == subject
            ]

    def find(self, subject: str, client_id: str) -> ConsentRecord | None:
        for record in self.for_subject(subject):
            if record.client_id == client_id:
                return record
        return None

    def remember(self, record: ConsentRecord) -> None:
        with self._lock:
            records = [
                r
                for r in self._read()
                if (r.get("subject"), r.get("client_id")) != (record.subject, record.client_id)
            ]
            records.append(
                {
                    "subject": record.subject,
                    "client_id": record.client_id,
                    "scopes": list(record.scopes),
                    "resources": list(record.resources),
                    "redirect_uri": record.redirect_uri,
                    "granted_at": record.granted_at,
                }
            )
            self._write(records)

    def revoke(self, subject: str, client_id: str) -> bool:
        with self._lock:
            records = self._read()
            kept = [
                r for r in records if (r.get("subject"), r.get("client_id")) != (subject, client_id)
            ]
            self._write(kept)
            return len(kept) != len(records)


def ticket(pending: PendingAuthorization) -> str:
    """A short handle of a pending request (its reference is never put in a page as is)."""
    return sha256_b64url(pending.request_uri)[:22]


def shown_scopes(pending: PendingAuthorization) -> tuple[str, ...]:
    """The scopes the consent page lists: the requested ones, else the client's default."""
    if pending.request.scopes:
        return pending.request.scopes
    return tuple((pending.client.scope or "").split())


class DemoConsent:
    """The demo's :class:`~pyramid_attesto.core.host.ConsentPolicy`: the logged-in user comes
    from the Pyramid session (set by the ``/login`` form); consent is remembered per user and
    client until revoked on ``/account``."""

    def __init__(self, records: ConsentRecords) -> None:
        self.records = records

    def authenticate_resource_owner(
        self, request: Any, authorization: PendingAuthorization
    ) -> object:
        session = request.session
        subject = session.get(SESSION_USER)
        handle = ticket(authorization)
        fresh = session.get(SESSION_FRESH_LOGIN) == handle
        if subject in USERS and ("login" not in authorization.request.prompt or fresh):
            return Authenticated(subject, auth_time=session.get(SESSION_AUTH_TIME))
        if "none" in authorization.request.prompt:
            return None
        return pages.login_page(request, authorization.resume_url, handle)

    def consent(self, request: Any, authorization: PendingAuthorization, subject: str) -> object:
        session = request.session
        handle = ticket(authorization)
        denied: list[str] = session.get(SESSION_DENIED, [])
        if handle in denied:
            session[SESSION_DENIED] = [d for d in denied if d != handle]
            return False
        scopes = shown_scopes(authorization)
        resources = authorization.request.resources
        redirect_uri = authorization.request.redirect_uri
        record = self.records.find(subject, authorization.client.client_id)
        if (
            record is not None
            and "consent" not in authorization.request.prompt
            and record.covers(scopes, resources, redirect_uri)
        ):
            return True
        granted = session.get(SESSION_PENDING, {})
        if granted.get("ticket") == handle and granted.get("granted"):
            # Just granted on the consent page (prompt=consent asks once, not forever).
            session.pop(SESSION_PENDING, None)
            return True
        session[SESSION_PENDING] = {
            "ticket": handle,
            "client_id": authorization.client.client_id,
            "scopes": list(scopes),
            "resources": list(resources),
            "redirect_uri": redirect_uri,
            "resume": authorization.resume_url,
            "granted": False,
        }
        return pages.consent_page(request, authorization, subject, handle, scopes)


def record_decision(request: Any, records: ConsentRecords, handle: str, allow: bool) -> str | None:
    """Record the consent page's answer for ``handle``; the resume URL, or ``None`` when the
    session holds no such pending request."""
    session = request.session
    subject = session.get(SESSION_USER)
    pending = session.get(SESSION_PENDING)
    if subject not in USERS or not pending or pending.get("ticket") != handle:
        return None
    resume: str = pending["resume"]
    if allow:
        records.remember(
            ConsentRecord(
                subject=subject,
                client_id=pending["client_id"],
                scopes=tuple(pending["scopes"]),
                resources=tuple(pending["resources"]),
                redirect_uri=pending["redirect_uri"],
                granted_at=int(time.time()),
            )
        )
        session[SESSION_PENDING] = {**pending, "granted": True}
    else:
        session.pop(SESSION_PENDING, None)
        session[SESSION_DENIED] = [*session.get(SESSION_DENIED, [])[-9:], handle]
    return resume
