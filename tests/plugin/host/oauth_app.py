"""A host that runs the authorization server and protects its API (copied into pytester
projects as a module), its database wired the way the Pyramid cookiecutter does it:
``request.dbsession`` is the environ's ``app.dbsession`` when the tests put one there, else a
session joined to ``request.tm``; attesto keeps its rows in it (``attesto.storage =
dbsession``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import zope.sqlalchemy
from pyramid.config import Configurator
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

SETTINGS = {
    "attesto.issuer": "https://id.example.com",
    # The API on another origin than the issuer: proofs name each server's own URL.
    "attesto.resource": "https://api.example.com/api",
    "attesto.resources": "https://api.example.com/api",
    "attesto.default_resource": "https://api.example.com/api",
    "attesto.scopes_supported": "openid read:reports offline_access",
    "attesto.grant_types_supported": "authorization_code refresh_token client_credentials",
}


def reports(request: Any) -> dict[str, Any]:
    identity = request.identity
    return {"sub": identity.subject, "kind": identity.kind, "token_type": identity.token_type}


def get_tm_session(session_factory: Any, transaction_manager: Any, request: Any = None) -> Any:
    session = session_factory(info={"request": request})
    zope.sqlalchemy.register(session, transaction_manager=transaction_manager)
    return session


def make_app(
    settings: Mapping[str, Any],
    configure: Callable[[Configurator], None] | None = None,
    *,
    engine: Any = None,
) -> Any:
    with Configurator(settings=dict(settings)) as config:
        if engine is not None:
            config.registry.settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
            config.include("pyramid_tm")
            session_factory = sessionmaker(bind=engine)
            config.registry["dbsession_factory"] = session_factory

            def dbsession(request: Any) -> Any:
                found = request.environ.get("app.dbsession")
                if found is None:
                    found = get_tm_session(session_factory, request.tm, request)
                return found

            config.add_request_method(dbsession, reify=True)
        config.include("pyramid_attesto")
        config.include("pyramid_attesto.resource")
        if configure is not None:
            configure(config)
        config.add_route("reports", "/api/reports")
        config.add_view(reports, route_name="reports", renderer="json", permission="read:reports")
    return config.make_wsgi_app()


def sqlite_engine(path: str) -> Any:
    return create_engine(f"sqlite:///{path}")
