"""Flat callbacks (``attesto.<object>.<method> = pkg.mod:fn``): one method of a host object
replaced by a callable, over the object from the setting or directive, or making the whole
object when every method is given; checked at startup with errors naming the key."""

from __future__ import annotations

from typing import Any

import pytest
from asrv_support import CLIENTS, HTTPS, ISSUER, HostClients, as_app, basic, make_app
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.host import Principal
from pyramid_attesto.server import get_server
from pyramid_attesto.settings import is_known_key

TOKEN = "/oauth/token"
CC = {"grant_type": "client_credentials"}
RENAMED = Client(client_id="renamed", grant_types=("client_credentials",), scope="read")


def load_client(client_id: str) -> Client | None:
    """Knows one more client than the test host's store."""
    return RENAMED if client_id == "renamed" else CLIENTS.get(client_id)


def accept_renamed(client: Client, secret: str) -> bool:
    return client.client_id == "renamed" and secret == "renamed-secret-0123456789"


def no_jwt_secret(client: Client) -> str | None:
    return None


def load_principal(subject: str) -> Principal | None:
    return None if subject == "mallory" else Principal(subject)


NOT_CALLABLE = 42
MODULE = "test_hostpolicy_callbacks"


def _bare_app(settings: dict[str, Any]) -> TestApp:
    """No client store directive: only what the settings name."""
    app = make_app({"attesto.issuer": ISSUER, "attesto.scopes_supported": "read", **settings})
    app.extra_environ = dict(HTTPS)
    return app


def test_a_callback_replaces_one_method_of_the_directives_object() -> None:
    app = as_app({"attesto.client_store.load_client": f"{MODULE}:load_client"})
    # The host's verify_client_secret still decides: the new client has no secret there.
    res = app.post(TOKEN, CC, headers=basic("renamed", "renamed-secret-0123456789"), status=401)
    assert res.json["error"] == "invalid_client"
    assert app.post(TOKEN, CC, headers=basic("svc")).json["access_token"]


def test_callbacks_over_an_object_by_dotted_name() -> None:
    app = _bare_app(
        {
            "attesto.client_store": "asrv_support:HostClients",
            "attesto.client_store.load_client": f"{MODULE}:load_client",
            "attesto.client_store.verify_client_secret": f"{MODULE}:accept_renamed",
        }
    )
    app.post(TOKEN, CC, headers=basic("renamed", "renamed-secret-0123456789"), status=200)


def test_callbacks_for_every_method_make_the_object() -> None:
    app = _bare_app(
        {
            "attesto.principal_store.load_principal": f"{MODULE}:load_principal",
            "attesto.client_store.load_client": f"{MODULE}:load_client",
            "attesto.client_store.verify_client_secret": f"{MODULE}:accept_renamed",
            "attesto.client_store.client_secret_for_jwt": f"{MODULE}:no_jwt_secret",
        }
    )
    app.post(TOKEN, CC, headers=basic("renamed", "renamed-secret-0123456789"), status=200)
    store = get_server(app.app.registry).host.principal_store
    assert store is not None
    assert store.load_principal("mallory") is None
    assert store.load_principal("alice") == Principal("alice")


def test_a_partial_set_of_callbacks_without_an_object_names_the_missing_keys() -> None:
    with pytest.raises(
        ConfigurationExecutionError,
        match=r"set attesto\.client_store\.client_secret_for_jwt, "
        r"attesto\.client_store\.verify_client_secret, or attesto\.client_store for the rest",
    ):
        _bare_app({"attesto.client_store.load_client": f"{MODULE}:load_client"})


@pytest.mark.parametrize(
    ("value", "message"),
    [(f"{MODULE}:NOT_CALLABLE", "is not callable"), ("no_such_mod:fn", "cannot resolve")],
)
def test_a_bad_callback_names_its_key(value: str, message: str) -> None:
    with pytest.raises(
        ConfigurationExecutionError, match=rf"attesto\.client_store\.load_client: .*{message}"
    ):
        as_app({"attesto.client_store.load_client": value})


def test_an_unknown_method_is_an_unknown_setting_rule10() -> None:
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.client_store\.load_clients"):
        as_app({"attesto.client_store.load_clients": f"{MODULE}:load_client"})
    assert is_known_key("attesto.refresh_token_policy.issue_refresh_token")
    assert not is_known_key("attesto.refresh_token_policy.issue")
    assert is_known_key("other.key")


def test_callback_store_is_the_one_used() -> None:
    class Counting(HostClients):
        calls = 0

    def count(client_id: str) -> Any:
        Counting.calls += 1
        return CLIENTS.get(client_id)

    app = as_app({"attesto.client_store.load_client": count}, set_attesto_client_store=Counting())
    app.post(TOKEN, CC, headers=basic("svc"), status=200)
    assert Counting.calls >= 1
