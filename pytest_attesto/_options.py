"""The per-test options: ``@pytest.mark.attesto(...)`` over the host's ``attesto_settings``.

Keyword-only and checked (as pytest_httpx's options): an unknown option, a positional argument
or a value of the wrong type fails the test before it runs, naming the option.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_ISSUER",
    "DEFAULT_RESOURCE",
    "MARKER",
    "MARKER_HELP",
    "AttestoOptions",
    "OptionsError",
    "TokenAlgorithm",
    "parse_marker_kwargs",
    "resolve_options",
]

MARKER: Final = "attesto"
DEFAULT_ISSUER: Final = "https://issuer.example"
DEFAULT_RESOURCE: Final = "https://api.example"
DEFAULT_CLIENT_ID: Final = "attesto-test-client"
TokenAlgorithm = Literal["ES256", "EdDSA", "RS256", "PS256"]
"""The core's ``Algorithm`` (kept here so that loading the plugin imports no pyramid)."""
TOKEN_ALGORITHMS: Final[tuple[str, ...]] = get_args(TokenAlgorithm)
DPOP_ALGORITHMS: Final = ("ES256", "EdDSA", "PS256", "RS256")

MARKER_HELP: Final = (
    "attesto(*, now=None, issuer=None, audience=None, base_url=None, client_id=None, "
    "token_alg=None, dpop_alg=None, settings=None): per-test options of the pytest_attesto "
    "fixtures: the frozen time (epoch seconds or an aware datetime), the issuer and audience "
    "of minted tokens, the URL the client addresses (and DPoP proofs name), the default "
    "client_id, the signing algorithms of tokens and DPoP proofs, and attesto.* settings "
    "merged over attesto_settings (in attesto_options.settings). Unknown options fail."
)


class OptionsError(ValueError):
    """A bad ``@pytest.mark.attesto`` option (the message names it)."""


@dataclass(frozen=True)
class AttestoOptions:
    """What the fixtures of one test use.

    ``settings`` is the host's ``attesto_settings`` with the marker's ``settings`` merged
    over it: a host ``attesto_app`` fixture builds its app from it. ``issuer`` and
    ``audience`` are what minted tokens say (by default the settings' ``attesto.issuer`` and
    first ``attesto.resource``); ``base_url`` is where the client sends requests and what
    its DPoP proofs' ``htu`` start with (by default ``attesto.public_url``, else the first
    resource's origin, else the issuer's origin).
    """

    now: float
    issuer: str
    audience: str
    base_url: str
    client_id: str = DEFAULT_CLIENT_ID
    token_alg: TokenAlgorithm | None = None
    dpop_alg: str = "ES256"
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dpop_max_age(self) -> int:
        """The ``attesto.dpop.max_age`` the app enforces (60 unless set)."""
        value = self.settings.get("attesto.dpop.max_age", 60)
        try:
            return int(str(value).strip())
        except ValueError:
            return 60

    @property
    def access_token_leeway(self) -> int:
        """The ``attesto.access_token_leeway`` of the resource server (30 unless set)."""
        value = self.settings.get("attesto.access_token_leeway", 30)
        try:
            return int(str(value).strip())
        except ValueError:
            return 30


def _url(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise OptionsError(f"attesto marker: {name} must be a string URL, not {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionsError(f"attesto marker: {name} must be an absolute http(s) URL: {value!r}")
    return value


def _now(value: object) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise OptionsError("attesto marker: now must be an aware datetime (give tzinfo)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionsError(f"attesto marker: now must be epoch seconds or a datetime: {value!r}")
    return float(value)


def _choice(name: str, value: object, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise OptionsError(f"attesto marker: {name} must be one of {', '.join(allowed)}")
    return str(value)


def _nonempty(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise OptionsError(f"attesto marker: {name} must be a non-empty string")
    return value


def _settings(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise OptionsError("attesto marker: settings must be a dict of attesto.* settings")
    return dict(value)


_PARSERS: Final = {
    "now": _now,
    "issuer": lambda v: _url("issuer", v),
    "audience": lambda v: _url("audience", v),
    "base_url": lambda v: _url("base_url", v).rstrip("/"),
    "client_id": lambda v: _nonempty("client_id", v),
    "token_alg": lambda v: _choice("token_alg", v, TOKEN_ALGORITHMS),
    "dpop_alg": lambda v: _choice("dpop_alg", v, DPOP_ALGORITHMS),
    "settings": _settings,
}


def parse_marker_kwargs(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The checked options of one ``attesto`` marker."""
    if args:
        raise OptionsError("attesto marker: options are keyword-only (now=..., audience=...)")
    unknown = sorted(set(kwargs) - set(_PARSERS))
    if unknown:
        raise OptionsError(
            f"attesto marker: unknown option {unknown[0]!r} (known: {', '.join(_PARSERS)})"
        )
    return {name: _PARSERS[name](value) for name, value in kwargs.items()}


def _first_resource(value: object) -> str | None:
    if value is None:
        return None
    items = value.split() if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
    return items[0] if items else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def resolve_options(
    settings: Mapping[str, Any],
    markers: Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]],
    *,
    wall_clock: float,
) -> AttestoOptions:
    """Merge the markers (farthest first, so the closest wins) over ``settings``.

    ``wall_clock`` is the default frozen time (the time the test starts, whole seconds).
    """
    given: dict[str, Any] = {}
    merged_settings: dict[str, Any] = dict(settings)
    for args, kwargs in markers:
        parsed = parse_marker_kwargs(args, kwargs)
        merged_settings.update(parsed.pop("settings", {}))
        given.update(parsed)
    issuer = given.get("issuer") or str(merged_settings.get("attesto.issuer") or DEFAULT_ISSUER)
    resource = _first_resource(merged_settings.get("attesto.resource"))
    audience = given.get("audience") or resource or issuer
    public_url = merged_settings.get("attesto.public_url")
    base_url = given.get("base_url") or (
        str(public_url).rstrip("/") if public_url else _origin(resource or issuer)
    )
    return AttestoOptions(
        now=given.get("now", float(math.floor(wall_clock))),
        issuer=issuer,
        audience=audience,
        base_url=base_url,
        client_id=given.get("client_id", DEFAULT_CLIENT_ID),
        token_alg=given.get("token_alg"),
        dpop_alg=given.get("dpop_alg", "ES256"),
        settings=MappingProxyType(merged_settings),
    )
