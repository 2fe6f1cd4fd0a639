"""The throwaway host of the plugin tests: a small API protected by pyramid_attesto's resource
server, written the way a host app would be (copied into a pytester project as a module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pyramid.config import Configurator


def report_view(request: Any) -> dict[str, Any]:
    identity = request.identity
    return {
        "sub": identity.subject,
        "kind": identity.kind,
        "client_id": identity.client_id,
        "scopes": list(identity.scopes),
        "token_type": identity.token_type,
    }


def make_app(
    settings: Mapping[str, Any], configure: Callable[[Configurator], None] | None = None
) -> Any:
    """``GET /api/reports`` needs ``read:reports``; ``POST /api/reports`` needs
    ``write:reports`` (both through Pyramid permissions, which are scopes on OAuth requests);
    ``GET /api/admin`` needs both (``attesto_scopes``)."""
    with Configurator(settings=dict(settings)) as config:
        config.include("pyramid_attesto.resource")
        if configure is not None:
            configure(config)
        config.add_route("reports", "/api/reports")
        config.add_view(
            report_view,
            route_name="reports",
            request_method="GET",
            renderer="json",
            permission="read:reports",
        )
        config.add_view(
            report_view,
            route_name="reports",
            request_method="POST",
            renderer="json",
            permission="write:reports",
        )
        config.add_route("admin", "/api/admin")
        config.add_view(
            report_view,
            route_name="admin",
            renderer="json",
            attesto_scopes=["read:reports", "write:reports"],
        )
    return config.make_wsgi_app()
