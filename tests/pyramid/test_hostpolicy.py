"""Host policy objects: dotted names in settings or directives (the directive wins), resolved
at startup, each checked against its Protocol with an error naming the setting."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from asrv_support import ISSUER, make_app
from pyramid.exceptions import ConfigurationExecutionError

from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.core.host import CatalogScopePolicy, Event, NullEventSink
from pyramid_attesto.hostpolicy import emit
from pyramid_attesto.server import get_server


class Clients:
    def load_client(self, client_id: str) -> Client | None:
        return None

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        return False

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return None


CLIENTS = Clients()


class NotAStore:
    def load_client(self, client_id: str) -> None:
        return None


class Scopes:
    def authorize_scope(
        self, client: Client, requested: Sequence[str], *, subject: str | None
    ) -> Sequence[str]:
        return ()


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)


class Failing:
    def on_event(self, event: Event) -> None:
        raise RuntimeError("boom")


def _host(settings: dict[str, Any], **directives: Any) -> Any:
    app = make_app({"attesto.issuer": ISSUER, **settings}, directives=directives)
    return get_server(app.app.registry).host


def test_defaults_without_host_settings() -> None:
    host = _host({})
    assert host.client_store is None
    assert isinstance(host.scope_policy, CatalogScopePolicy)
    assert isinstance(host.event_sink, NullEventSink)


def test_dotted_names_resolve_instances_and_classes() -> None:
    host = _host(
        {
            "attesto.client_store": f"{__name__}:CLIENTS",
            "attesto.scope_policy": f"{__name__}:Scopes",
        }
    )
    assert host.client_store is CLIENTS
    assert isinstance(host.scope_policy, Scopes)


def test_directive_wins_over_the_setting() -> None:
    store = Clients()
    host = _host(
        {"attesto.client_store": f"{__name__}:CLIENTS"},
        set_attesto_client_store=store,
    )
    assert host.client_store is store


def test_directive_accepts_a_dotted_name() -> None:
    host = _host({}, set_attesto_event_sink=f"{__name__}:Sink")
    assert isinstance(host.event_sink, Sink)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("attesto.client_store", "no.such.module:Store", "attesto.client_store: cannot resolve"),
        ("attesto.client_store", f"{__name__}:NotAStore", "missing client_secret_for_jwt"),
        ("attesto.event_sink", f"{__name__}:CLIENTS", "does not implement EventSink"),
        ("attesto.principal_store", "", "attesto.principal_store: must not be empty"),
    ],
)
def test_bad_host_objects_name_the_setting(key: str, value: str, match: str) -> None:
    with pytest.raises(ConfigurationExecutionError, match=re.escape(match)) as info:
        make_app({"attesto.issuer": ISSUER, key: value})
    assert issubclass(info.value.etype, ConfigurationError)


def test_bad_directive_value_names_the_setting() -> None:
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.client_store"):
        make_app({"attesto.issuer": ISSUER}, directives={"set_attesto_client_store": object()})


def test_events_reach_the_sink_and_pyramid_subscribers() -> None:
    sink = Sink()
    seen: list[Event] = []
    app = make_app({"attesto.issuer": ISSUER}, directives={"set_attesto_event_sink": sink})
    registry = app.app.registry
    registry.registerHandler(seen.append, (Event,))
    event = Event("token_issued", client_id="c1", grant_type="client_credentials")
    emit(registry, get_server(registry).host, event)
    assert sink.events == [event]
    assert seen == [event]


def test_a_failing_sink_never_breaks_the_request(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app({"attesto.issuer": ISSUER}, directives={"set_attesto_event_sink": Failing()})
    registry = app.app.registry
    emit(registry, get_server(registry).host, Event("token_denied", result="failure"))
    assert "event sink failed" in caplog.text
