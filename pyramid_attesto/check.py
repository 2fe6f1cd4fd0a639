"""``attesto check CONFIG.ini``: report every insecure or inconsistent choice in the
``attesto.*`` settings of a PasteDeploy ini file, each with its fix.

The settings are read through plaster / PasteDeploy (``[app:main]``, or ``--name``), exactly
as ``pserve`` would hand them to the application; nothing is imported from the application
and no database is opened. Each finding is an :class:`Finding` with a severity:

``error``
    insecure or broken in production: the command exits with status 1;
``warning``
    acceptable in development only, or weaker than it could be.

How many processes serve the application matters (DESIGN.md D19: a per-process secret or a
memory store breaks a multi-process deployment): ``--workers N`` says so; without it the
``[server:main]`` section decides (waitress is one process), and an unknown server is assumed
to run several.

What is checked (the ``code`` of each finding):

=======================  ==========================================================
``invalid``              a setting does not parse, or settings contradict each other
``http-issuer``          an ``http`` issuer that is not loopback
``development-issuer``   a loopback ``http`` issuer (development only)
``require-https-off``    ``attesto.require_https = false`` (D23)
``missing-keys``         no ``attesto.keystore`` (and no ``attesto.jwks_uri``), or a key
                         file that does not exist or does not load
``key-file-mode``        a private key file readable by group or others
``no-rs256-key``         ``openid`` in the catalog but no RS256 key for ID tokens
``generated-key``        ``attesto.keystore = generate``: a per-process key (D19)
``memory-stores``        the memory stores (codes, refresh tokens, nonces, replays) with
                         several processes, or at all (lost on restart)
``par-store``            pushed and pending authorization requests in process memory
``replay-store``         the resource server's DPoP replay store in process memory
``registration-store``   dynamically registered clients in process memory
``nonce-secret``         DPoP nonces from a per-process secret (D19), or a short one
``successor-secret``     a refresh grace window without (or with a short) successor
                         secret (D12, D24)
``refresh-reuse``        a grace window long enough to weaken refresh reuse detection
``trusted-proxies``      every peer trusted to set ``X-Forwarded-*``
``access-token-ttl``     access tokens living longer than an hour
``bearer-body``          access tokens accepted in form bodies
``revocation-check``     the access-token denylist on without a shared store
=======================  ==========================================================

PKCE (S256, every client), refresh-token rotation with reuse detection, exact redirect-URI
matching and ``iss`` on authorization responses are always on: no setting turns them off, so
there is nothing to check.
"""

from __future__ import annotations

import configparser
import ipaddress
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .core.errors import ConfigurationError
from .settings import PREFIX, SETTINGS, parse_settings

__all__ = ["Finding", "check_settings", "load_settings", "run_check", "server_workers"]

Severity = Literal["error", "warning"]
_MIN_SECRET = 32


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: its ``code``, ``severity``, the ``setting`` it is about, what is wrong
    (``message``) and how to fix it (``fix``)."""

    code: str
    severity: Severity
    setting: str
    message: str
    fix: str

    def render(self) -> str:
        head = f"{self.severity.upper():7} {self.code}: {self.setting}: {self.message}"
        return f"{head}\n        fix: {self.fix}"


def load_settings(path: Path, name: str = "main") -> dict[str, str]:
    """The ``[app:NAME]`` settings of ``path``, as PasteDeploy resolves them."""
    from pyramid.paster import get_appsettings

    found = get_appsettings(str(path), name)
    return {str(k): str(v) for k, v in found.items()}


def server_workers(path: Path) -> int | None:
    """How many processes the ``[server:main]`` section runs: 1 for waitress (threads in
    one process), the ``workers`` value when there is one, else ``None`` (unknown)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return None
    if not parser.has_section("server:main"):
        return None
    section = parser["server:main"]
    workers = section.get("workers")
    if workers is not None and workers.strip().isdigit():
        return int(workers)
    if "waitress" in section.get("use", ""):
        return 1
    return None


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Checker:
    def __init__(self, settings: Mapping[str, str], workers: int | None) -> None:
        self.raw = {k[len(PREFIX) :]: v for k, v in settings.items() if k.startswith(PREFIX)}
        self.settings = settings
        self.several = workers is None or workers > 1
        self.workers = workers
        self.findings: list[Finding] = []
        self.values: dict[str, Any] = {}

    def add(self, code: str, severity: Severity, setting: str, message: str, fix: str) -> None:
        self.findings.append(Finding(code, severity, PREFIX + setting, message, fix))

    def per_process(self) -> Severity:
        return "error" if self.several else "warning"

    def processes(self) -> str:
        if self.workers is None:
            return "the server may run several processes (say --workers 1 if it does not)"
        if self.workers > 1:
            return f"{self.workers} processes serve the app"
        return "one process serves the app; it is lost on restart"

    def parse(self) -> None:
        for name in sorted(self.raw):
            spec = SETTINGS.get(name)
            if spec is None:
                self.add("invalid", "error", name, "unknown setting", "remove it or fix its name")
                continue
            try:
                self.values[name] = spec.parse(PREFIX + name, self.raw[name])
            except ConfigurationError as exc:
                self.add("invalid", "error", name, str(exc), "see the configuration reference")
        for name, spec in SETTINGS.items():
            if name not in self.values and name not in self.raw:
                if spec.required and not (name == "keystore" and "jwks_uri" in self.raw):
                    code = "missing-keys" if name == "keystore" else "invalid"
                    self.add(code, "error", name, "required and missing", f"set {PREFIX}{name}")
                self.values[name] = spec.default

    def issuer(self) -> bool:
        issuer = self.values.get("issuer")
        if not isinstance(issuer, str):
            return False
        parts = urlsplit(issuer)
        loopback = _loopback(parts.hostname)
        if parts.scheme == "http" and not loopback:
            self.add(
                "http-issuer",
                "error",
                "issuer",
                f"{issuer} is plain http on a public host: codes and tokens travel in clear",
                "serve the issuer over https (RFC 9700 §4.1.1, RFC 8414 §2)",
            )
        elif parts.scheme == "http":
            self.add(
                "development-issuer",
                "warning",
                "issuer",
                f"{issuer} is a loopback http issuer: development only",
                "use an https issuer in production",
            )
        if not self.values.get("require_https", True):
            self.add(
                "require-https-off",
                "warning" if loopback else "error",
                "require_https",
                "plain-HTTP requests to the token, PAR, revocation, introspection and userinfo "
                "endpoints are accepted (D23)",
                "remove attesto.require_https (default true); behind a TLS-terminating proxy "
                "set attesto.trusted_proxies instead",
            )
        return True

    def keys(self) -> None:
        keystore = self.values.get("keystore")
        if not isinstance(keystore, str) or not keystore:
            return
        if keystore == "generate":
            self.add(
                "generated-key",
                self.per_process(),
                "keystore",
                "a key generated at startup, per process: tokens signed by one process fail "
                f"in another, and every restart invalidates them ({self.processes()})",
                "attesto keys generate /path/keys.json, then attesto.keystore = that path",
            )
            return
        parts = keystore.split()
        if not all(Path(p).suffix in (".json", ".jwks", ".pem") for p in parts):
            return  # a dotted name: the host's own keystore
        from .core.keys import FileKeystore

        for part in parts:
            path = Path(part)
            if not path.exists():
                self.add(
                    "missing-keys",
                    "error",
                    "keystore",
                    f"{path} does not exist (relative paths are read from the working directory)",
                    f"attesto keys generate {path}",
                )
                return
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                self.add(
                    "key-file-mode",
                    "error",
                    "keystore",
                    f"{path} holds private keys and is readable by others (mode {mode:o})",
                    f"chmod 600 {path}",
                )
        try:
            store = FileKeystore(*parts)
        except ConfigurationError as exc:
            self.add("missing-keys", "error", "keystore", str(exc), "fix or regenerate the file")
            return
        if "openid" in (self.values.get("scopes_supported") or ()) and (
            "RS256" not in store.algorithms
        ):
            self.add(
                "no-rs256-key",
                "error",
                "keystore",
                "openid is offered but no RS256 key signs ID tokens (OIDC Core §15.1)",
                f"attesto keys rotate {parts[0]} --step add --alg RS256, then --step promote",
            )

    def stores(self) -> None:
        storage = self.values.get("storage") or (
            "sqlalchemy" if self.values.get("sqlalchemy.url") else "memory"
        )
        if storage == "memory":
            self.add(
                "memory-stores",
                self.per_process(),
                "storage",
                "codes, refresh tokens, DPoP nonces and replays live in process memory "
                f"({self.processes()})",
                "set attesto.sqlalchemy.url (PostgreSQL for clusters) or attesto.storage = "
                "dbsession, then attesto db upgrade",
            )
            self.add(
                "par-store",
                self.per_process(),
                "storage",
                "pushed and pending authorization requests live in process memory: a login "
                "or consent answered by another process loses the request",
                "use a database (attesto.sqlalchemy.url or attesto.storage = dbsession)",
            )
        url = self.values.get("sqlalchemy.url")
        if isinstance(url, str) and url.startswith("sqlite") and self.several:
            self.add(
                "memory-stores",
                "warning",
                "sqlalchemy.url",
                "SQLite is shared by the processes of one host only",
                "use PostgreSQL when the app runs on several hosts",
            )
        if (
            self.values.get("registration.enabled")
            and self.values.get("registration_store") == "memory"
        ):
            self.add(
                "registration-store",
                self.per_process(),
                "registration_store",
                "dynamically registered clients live in process memory: lost on restart and "
                f"unknown to the other processes ({self.processes()})",
                "attesto.registration_store = sqlalchemy (after attesto db upgrade)",
            )
        if self.values.get("resource"):
            # Unset, an app that is its own AS claims replays in (and checks revocations
            # against) the AS's storage: shared when that is the attesto database.
            explicit = "replay_store" in self.raw
            replay = self.values.get("replay_store") if explicit else None
            replay = replay or ("shared" if storage == "sqlalchemy" else "memory")
            if replay == "memory":
                self.add(
                    "replay-store",
                    self.per_process(),
                    "replay_store",
                    "the resource server claims DPoP proofs in process memory: a proof "
                    f"replayed to another process is accepted ({self.processes()})",
                    "attesto.replay_store = the database URL (or a shared ReplayStore)",
                )
            if self.values.get("revocation_check") and replay == "memory":
                in_process = storage == "memory" and not explicit
                self.add(
                    "revocation-check",
                    self.per_process() if in_process else "error",
                    "revocation_check",
                    "the access-token denylist needs the shared store",
                    "a database URL in attesto.replay_store (or attesto.sqlalchemy.url)",
                )

    def secrets(self) -> None:
        nonce_secret = self.values.get("dpop.nonce_secret") or ()
        uses_nonces = self.values.get("dpop.nonce") == "hmac" or self.values.get(
            "dpop.resource_nonce"
        )
        if uses_nonces and not nonce_secret:
            self.add(
                "nonce-secret",
                self.per_process(),
                "dpop.nonce_secret",
                "DPoP nonces come from a secret generated per process: a nonce from one "
                f"process is refused by another ({self.processes()})",
                "set attesto.dpop.nonce_secret to one random value (32+ bytes) on every node",
            )
        for secret in nonce_secret:
            if len(secret.encode()) < _MIN_SECRET:
                self.add(
                    "nonce-secret",
                    "error",
                    "dpop.nonce_secret",
                    "shorter than 32 bytes",
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                )
        grace = self.values.get("refresh_grace_ttl") or 0
        successor = self.values.get("refresh_successor_secret")
        if grace and not successor:
            self.add(
                "successor-secret",
                "error",
                "refresh_grace_ttl",
                "a grace window needs attesto.refresh_successor_secret (D12, D24)",
                "set attesto.refresh_successor_secret (32+ random bytes, the same on every "
                "node), or remove attesto.refresh_grace_ttl",
            )
        if isinstance(successor, str) and len(successor.encode()) < _MIN_SECRET:
            self.add(
                "successor-secret",
                "error",
                "refresh_successor_secret",
                "shorter than 32 bytes",
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        if grace > 60:
            self.add(
                "refresh-reuse",
                "warning",
                "refresh_grace_ttl",
                f"a {grace} s grace window lets a stolen refresh token be retried that long "
                "without tripping reuse detection (RFC 9700 §4.14.2)",
                "keep it to a few seconds (network retries only)",
            )

    def others(self) -> None:
        for network in self.values.get("trusted_proxies") or ():
            if network.prefixlen == 0:
                self.add(
                    "trusted-proxies",
                    "error",
                    "trusted_proxies",
                    f"{network} trusts every peer to set X-Forwarded-* (forged htu, scheme)",
                    "list only your proxies' addresses",
                )
        ttl = self.values.get("access_token_ttl") or 0
        if ttl > 3600:
            self.add(
                "access-token-ttl",
                "warning",
                "access_token_ttl",
                f"access tokens live {ttl} s; they are verified locally and hard to revoke",
                "keep them short (900 s default) and use refresh tokens",
            )
        if "body" in (self.values.get("bearer_methods") or ()):
            self.add(
                "bearer-body",
                "warning",
                "bearer_methods",
                "access tokens are accepted in form bodies (RFC 6750 §2.2)",
                "accept the Authorization header only (the default)",
            )

    def together(self) -> None:
        if any(f.severity == "error" and f.code == "invalid" for f in self.findings):
            return
        try:
            parse_settings(self.settings)
        except ConfigurationError as exc:
            text = str(exc)
            if not any(f.message in text or text in f.message for f in self.findings) and not (
                "must be https" in text and any(f.code == "http-issuer" for f in self.findings)
            ):
                self.add("invalid", "error", "", text, "see the configuration reference")


def check_settings(settings: Mapping[str, str], *, workers: int | None = None) -> list[Finding]:
    """Every finding about ``settings`` (the application's settings, ``attesto.*`` keys and
    others), for an app served by ``workers`` processes (``None``: unknown)."""
    checker = _Checker(settings, workers)
    checker.parse()
    checker.issuer()
    checker.keys()
    checker.stores()
    checker.secrets()
    checker.others()
    checker.together()
    return checker.findings


def run_check(path: Path, *, name: str = "main", workers: int | None = None) -> int:
    """The command: print the findings; 1 when there is an error, 2 when the file cannot be
    read, else 0."""
    try:
        settings = load_settings(path, name)
    except Exception as exc:  # PasteDeploy raises many kinds: report any
        print(f"attesto: cannot read [app:{name}] of {path}: {exc}", file=sys.stderr)
        return 2
    if workers is None:
        workers = server_workers(path)
    findings = check_settings(settings, workers=workers)
    for finding in findings:
        print(finding.render())
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    print(f"{path}: {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0
