from __future__ import annotations

import pytest

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.settings import SETTINGS, parse_settings

BASE = {"attesto.issuer": "https://id.example", "attesto.keystore": "keys.json"}


def test_defaults() -> None:
    parsed = parse_settings(BASE)
    assert parsed.issuer == "https://id.example"
    assert parsed.route_prefix == "/oauth"
    assert parsed.require_https is True
    assert (parsed.access_token_ttl, parsed.code_ttl, parsed.par_ttl) == (900, 60, 90)
    assert parsed.refresh_token_ttl == 14 * 24 * 3600


def test_values_are_parsed_with_pyramid_semantics() -> None:
    parsed = parse_settings(
        {
            **BASE,
            "attesto.require_https": "false",
            "attesto.issuer": "http://127.0.0.1:6543",
            "attesto.route_prefix": "/mcp/oauth",
            "attesto.trusted_proxies": "10.0.0.1\n192.168.0.0/16",
            "attesto.scopes_supported": "openid read:reports\nwrite:reports",
            "attesto.access_token_ttl": "300",
        }
    )
    assert parsed.route_prefix == "/mcp/oauth"
    assert [str(n) for n in parsed.trusted_proxies] == ["10.0.0.1/32", "192.168.0.0/16"]
    assert parsed.scopes_supported == ("openid", "read:reports", "write:reports")
    assert parsed.access_token_ttl == 300


def test_other_settings_are_ignored() -> None:
    assert parse_settings({**BASE, "tm.manager_hook": "x", "attestorx": "y"}).issuer


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({**BASE, "attesto.isuer": "x"}, "attesto.isuer"),  # unknown key: a typo
        ({"attesto.keystore": "k"}, "attesto.issuer"),  # missing required
        ({"attesto.issuer": "https://id.example"}, "attesto.keystore"),
        ({**BASE, "attesto.code_ttl": "soon"}, "attesto.code_ttl"),
        ({**BASE, "attesto.code_ttl": "0"}, "attesto.code_ttl"),
        ({**BASE, "attesto.require_https": "perhaps"}, "attesto.require_https"),
        ({**BASE, "attesto.route_prefix": "oauth/"}, "attesto.route_prefix"),
        ({**BASE, "attesto.trusted_proxies": "not-an-ip"}, "attesto.trusted_proxies"),
        ({**BASE, "attesto.issuer": "http://id.example"}, "attesto.issuer"),
        ({**BASE, "attesto.issuer": "https://id.example/"}, "attesto.issuer"),
        ({**BASE, "attesto.issuer": "https://id.example?x=1"}, "attesto.issuer"),
        ({**BASE, "attesto.issuer": "https://id.example#f"}, "attesto.issuer"),
        ({**BASE, "attesto.issuer": "https://u@id.example"}, "attesto.issuer"),
        ({**BASE, "attesto.issuer": "/relative"}, "attesto.issuer"),
        # plain http is for a loopback issuer with require_https off, nothing else
        (
            {**BASE, "attesto.issuer": "http://id.example", "attesto.require_https": "false"},
            "attesto.issuer",
        ),
        ({**BASE, "attesto.issuer": "http://127.0.0.1:6543"}, "attesto.issuer"),
    ],
)
def test_bad_settings_name_their_key(settings: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names.replace(".", r"\.")):
        parse_settings(settings)


def test_every_setting_has_help() -> None:
    assert all(spec.help for spec in SETTINGS.values())
