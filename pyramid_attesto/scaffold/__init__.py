"""``attesto install``: scaffold pyramid_attesto into an existing Pyramid project (the
cookiecutter layout: ``development.ini`` with ``[app:main] use = egg:<project>``, the
package beside it).

What it does, each step only when not done already (so a second run changes nothing):

1. writes ``<package>/attesto_policy.py``: typed stubs of the host policy (client store,
   principal store, consent policy, claims provider) that **fail closed** until filled in —
   no client is known, no secret verifies, no user logs in, nobody consents — and log a
   warning saying which stub answered;
2. adds ``pyramid_attesto`` to ``pyramid.includes`` and an ``attesto.*`` settings block
   (between marker comments) to ``[app:main]`` of the ini;
3. generates the signing keys (``var/attesto-keys.json``, mode 0600) when absent;
4. when the app has a database (``sqlalchemy.url``), stores the attesto tables in it
   (``attesto.storage = dbsession``) and adds the ``[attesto]`` Alembic section
   (``alembic -c <ini> -n attesto upgrade head``, DESIGN.md D20);
5. prints the next steps.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from pyramid_attesto.core.errors import ConfigurationError

__all__ = ["BEGIN", "END", "install"]

BEGIN = "# -- pyramid_attesto (attesto install) --"
END = "# -- end pyramid_attesto --"

POLICY_MODULE = '''\
"""The host policy of pyramid_attesto (written by ``attesto install``; yours to edit).

Every stub here FAILS CLOSED until you fill it in: no client is known, no secret verifies,
no user logs in and nobody consents, so the authorization server issues nothing. Each stub
logs a warning when it answers. See the pyramid_attesto documentation, "Host policy".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pyramid_attesto.core.authorize import PendingAuthorization
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.host import Principal

log = logging.getLogger(__name__)


def _stub(name: str) -> None:
    log.warning("%s.%s is an unfilled attesto install stub: refusing", __name__, name)


class Clients:
    """The client registry (pyramid_attesto.core.clients.ClientStore)."""

    def load_client(self, client_id: str) -> Client | None:
        """The registered client ``client_id``, or None (unknown or disabled)."""
        _stub("Clients.load_client")
        return None

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        """Whether ``secret`` is the client's: keep only a hash, compare in constant time
        (pyramid_attesto.core.secret.hash_secret / constant_time_equals)."""
        _stub("Clients.verify_client_secret")
        return False

    def client_secret_for_jwt(self, client: Client) -> str | None:
        """The shared secret of a client_secret_jwt client (None: that method fails)."""
        return None


class Principals:
    """Your users (pyramid_attesto.core.host.PrincipalStore)."""

    def load_principal(self, subject: str) -> Principal | None:
        """The active user whose ``sub`` is ``subject``, or None."""
        _stub("Principals.load_principal")
        return None


class Consent:
    """Login and consent at the authorization endpoint
    (pyramid_attesto.core.host.ConsentPolicy)."""

    def authenticate_resource_owner(
        self, request: Any, authorization: PendingAuthorization
    ) -> object:
        """The logged-in user's ``sub``; or your login page (a response) that sends the
        browser back to ``authorization.resume_url``; or None (login_required)."""
        _stub("Consent.authenticate_resource_owner")
        return None

    def consent(self, request: Any, authorization: PendingAuthorization, subject: str) -> object:
        """True (granted), False (access_denied) or your consent page (a response)."""
        _stub("Consent.consent")
        return False


class Claims:
    """UserInfo and ID-token claims (pyramid_attesto.core.host.ClaimsProvider)."""

    def userinfo_claims(
        self, subject: str, scopes: Sequence[str], requested: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        return {}

    def id_token_claims(
        self, client: Client, subject: str, scopes: Sequence[str], requested: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        return {}
'''


def _package(ini: Path, parser: configparser.ConfigParser, given: str | None) -> str:
    if given:
        return given
    use = parser.get("app:main", "use", fallback="")
    match = re.fullmatch(r"\s*egg:([A-Za-z0-9_.\-]+)(#\w+)?\s*", use)
    if not match:
        raise ConfigurationError(f"{ini}: [app:main] has no `use = egg:<project>`: give --package")
    return match.group(1).replace("-", "_").lower()


def _settings_block(package: str, route_prefix: str, origin: str, database: bool) -> list[str]:
    lines = [
        BEGIN,
        f"attesto.issuer = {origin}",
        "# Development only (a loopback issuer); remove in production.ini (D23).",
        "attesto.require_https = false",
        "attesto.keystore = %(here)s/var/attesto-keys.json",
        f"attesto.route_prefix = {route_prefix}",
        "attesto.scopes_supported = openid profile offline_access",
        f"attesto.client_store = {package}.attesto_policy:Clients",
        f"attesto.principal_store = {package}.attesto_policy:Principals",
        f"attesto.consent_policy = {package}.attesto_policy:Consent",
        f"attesto.claims_provider = {package}.attesto_policy:Claims",
    ]
    if database:
        lines.append("# The attesto tables live in the app's database, in its transaction.")
        lines.append("attesto.storage = dbsession")
    lines.append(END)
    return lines


def _origin(parser: configparser.ConfigParser) -> str:
    listen = parser.get("server:main", "listen", fallback="").split()
    if listen and re.fullmatch(r"(localhost|127\.0\.0\.1|\[::1\]|\*):\d+", listen[0]):
        host, port = listen[0].rsplit(":", 1)
        return f"http://{'127.0.0.1' if host in ('*', 'localhost') else host}:{port}"
    return "http://127.0.0.1:6543"


def _edit_ini(text: str, block: list[str]) -> str:
    """Insert the block at the end of ``[app:main]`` and add pyramid_attesto to
    ``pyramid.includes`` (unchanged text when both are there)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "[app:main]"), None)
    if start is None:
        raise ConfigurationError("the ini has no [app:main] section")
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    section = lines[start:end]
    if not any(ln.strip() == BEGIN for ln in section):
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = ["", *block]
        end += len(block) + 1
    section = lines[start:end]
    includes = next(
        (i for i, ln in enumerate(section) if re.match(r"pyramid\.includes\s*=", ln)), None
    )
    if includes is None:
        at = start + next(i for i, ln in enumerate(section) if ln.strip() == BEGIN) + 1
        lines[at:at] = ["pyramid.includes = pyramid_attesto"]
    else:
        i = start + includes
        values = [lines[i].split("=", 1)[1].strip()]
        j = i + 1
        while j < len(lines) and lines[j][:1] in (" ", "\t") and lines[j].strip():
            values.append(lines[j].strip())
            j += 1
        if "pyramid_attesto" not in " ".join(values).split():
            if values[0]:
                lines[i] = lines[i] + " pyramid_attesto"
            else:
                lines[j:j] = ["    pyramid_attesto"]
    result = "\n".join(lines)
    return result + "\n" if text.endswith("\n") or not text else result


def _alembic_section(parser: configparser.ConfigParser) -> str | None:
    if parser.has_section("attesto"):
        return None
    url = parser.get("app:main", "sqlalchemy.url", fallback=None, raw=True)
    if not url:
        return None
    return (
        "\n[attesto]\n"
        "# The attesto tables' own Alembic lineage (version table attesto_alembic_version):\n"
        "#   alembic -c THIS.ini -n attesto upgrade head\n"
        "script_location = pyramid_attesto:migrations\n"
        f"sqlalchemy.url = {url}\n"
    )


def install(
    project: Path,
    *,
    ini: str = "development.ini",
    route_prefix: str = "/oauth",
    package: str | None = None,
) -> int:
    """Scaffold pyramid_attesto into ``project``; prints what changed and the next steps."""
    from pyramid_attesto.settings import SETTINGS

    route_prefix = SETTINGS["route_prefix"].parse("--route-prefix", route_prefix) or "/"
    ini_path = project / ini
    if not ini_path.is_file():
        raise ConfigurationError(f"{ini_path} does not exist (give --ini or --project)")
    text = ini_path.read_text(encoding="utf-8")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    pkg = _package(ini_path, parser, package)
    pkg_dir = project / pkg.replace(".", "/")
    if not (pkg_dir / "__init__.py").is_file():
        raise ConfigurationError(f"{pkg_dir} is not a Python package (give --package)")
    database = parser.has_option("app:main", "sqlalchemy.url")
    changed: list[str] = []

    policy = pkg_dir / "attesto_policy.py"
    if not policy.exists():
        policy.write_text(POLICY_MODULE, encoding="utf-8")
        changed.append(f"wrote {policy} (stubs that refuse until you fill them in)")

    block = _settings_block(pkg, route_prefix, _origin(parser), database)
    edited = _edit_ini(text, block)
    alembic = _alembic_section(parser)
    if alembic is not None:
        edited = edited.rstrip("\n") + "\n" + alembic
    if edited != text:
        ini_path.write_text(edited, encoding="utf-8")
        changed.append(f"extended {ini_path} (pyramid.includes, attesto.* settings)")
        if alembic is not None:
            changed.append(f"added the [attesto] Alembic section to {ini_path}")

    keys = project / "var" / "attesto-keys.json"
    if not keys.exists():
        from pyramid_attesto.cli import generate_key_file

        generate_key_file(keys)
        changed.append(f"generated {keys} (mode 0600; keep it out of version control)")

    for line in changed or ["nothing to do: pyramid_attesto is already installed"]:
        print(line)
    migrate = (
        f"  - create the attesto tables: alembic -c {ini} -n attesto upgrade head\n"
        if database
        else "  - (no database configured: the stores are in memory, one process only)\n"
    )
    print(
        "next steps:\n"
        f"  - fill in {pkg}/attesto_policy.py (clients, users, login and consent pages)\n"
        f"{migrate}"
        f"  - list your scopes in attesto.scopes_supported, protect views with "
        'permission="your:scope"\n'
        f"  - before production: attesto check production.ini"
    )
    return 0
