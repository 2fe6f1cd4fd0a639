"""The stores inside a request's transaction: zope.sqlalchemy + pyramid_tm (DESIGN.md rule 3).

A tiny Pyramid app under WebTest redeems codes the way the token endpoint will: its OAuth
errors are *returned* (with ``x-tm: commit``), so the consumed code commits with the error;
partial work that must not stick is undone with a savepoint; an exception aborts everything;
and when the commit itself fails the client gets a 503, never the token response.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # Import-time warnings of the pinned stack, not of this code: WebOb 1.8 imports the cgi
    # module (deprecated in Python 3.11), Pyramid 2.1 imports pkg_resources.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", UserWarning)
    import webtest
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response
from sqlalchemy import URL, Engine, event
from sqlalchemy.orm import Session

from pyramid_attesto.core.stores import (
    AuthorizationCode,
    CodeRefused,
    CodeReused,
    CodeTaken,
    Stores,
)
from pyramid_attesto.storage import (
    SqlStorage,
    get_tm_session,
    make_engine,
    make_session_factory,
    metadata,
)

NOW = 1_700_000_000


class CommitFailed(Exception):
    """Stands for the database refusing the commit (lost connection, serialization...)."""


def _error(request: Request, status: int, error: str) -> Response:
    response = Response(json_body={"error": error}, status=status)
    response.headers["Cache-Control"] = "no-store"
    if request.registry.settings["test.x_tm"]:
        response.headers["x-tm"] = "commit"  # the OAuth error commits what must persist
    return response


def token_view(request: Request) -> Response:
    stores: Stores = request.attesto_stores
    taken = stores.codes.take(request.POST["code"])
    if not isinstance(taken, CodeTaken):
        return _error(request, 400, "invalid_grant")
    savepoint = request.tm.savepoint()
    # Work that belongs to a successful issuance only: undone if the grant fails later.
    stores.revoked_access_tokens.add("partial-" + request.POST["code"], NOW + 900)
    if request.POST.get("verifier") != "right":
        savepoint.rollback()
        return _error(request, 400, "invalid_grant")
    if request.POST.get("fail_commit"):
        session: Session = request.dbsession

        def refuse(_session: Session) -> None:
            raise CommitFailed

        event.listen(session, "before_commit", refuse, once=True)
    stores.codes.finalize(request.POST["code"], family_id=None, access_tokens=())
    response = Response(json_body={"access_token": "AT", "token_type": "Bearer"})
    response.headers["Cache-Control"] = "no-store"
    return response


def raising_view(request: Request) -> Response:
    request.attesto_stores.codes.take(request.POST["code"])
    raise RuntimeError("a bug after the code was taken")


def claim_view(request: Request) -> Response:
    # The resource server's DPoP replay claim: its own short transaction (rule 3).
    claimed = request.registry.settings["test.own_transaction"].replay.check_and_record(
        request.POST["jti"], NOW + 120
    )
    request.attesto_stores.codes.take(request.POST["code"])
    if request.POST.get("fail"):
        raise RuntimeError("the view failed after the claim")
    return Response(json_body={"claimed": claimed})


def unavailable_view(exc: CommitFailed, request: Request) -> Response:
    return Response(json_body={"error": "temporarily_unavailable"}, status=503)


def make_app(engine: Engine, *, commit_veto: str | None, x_tm: bool = True) -> webtest.TestApp:
    session_factory = make_session_factory(engine)
    storage = SqlStorage(engine)
    settings: dict[str, Any] = {
        "tm.manager_hook": "pyramid_tm.explicit_manager",
        "test.x_tm": x_tm,
        "test.own_transaction": storage.for_engine(engine),
    }
    if commit_veto:
        settings["tm.commit_veto"] = commit_veto
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.add_request_method(
            lambda r: get_tm_session(session_factory, r.tm, r), "dbsession", reify=True
        )
        config.add_request_method(
            lambda r: storage.for_session(r.dbsession), "attesto_stores", reify=True
        )
        config.add_route("token", "/token")
        config.add_route("raise", "/raise")
        config.add_route("claim", "/claim")
        config.add_view(claim_view, route_name="claim", request_method="POST")
        config.add_view(token_view, route_name="token", request_method="POST")
        config.add_view(raising_view, route_name="raise", request_method="POST")
        config.add_exception_view(unavailable_view, context=CommitFailed)
        return webtest.TestApp(config.make_wsgi_app())


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url: str | URL = f"sqlite:///{tmp_path / 'tm.sqlite'}"
    else:
        url = request.getfixturevalue("postgresql_schemas")()
    engine = make_engine(url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=[None, "pyramid_tm.default_commit_veto"], ids=["no-veto", "veto"])
def app(request: pytest.FixtureRequest, engine: Engine) -> webtest.TestApp:
    return make_app(engine, commit_veto=request.param)


@pytest.fixture
def db(engine: Engine) -> Stores:
    """The stores seen from outside the requests, each read in its own transaction."""
    stores = SqlStorage(engine).for_engine(engine)
    stores.codes.put("code-1", AuthorizationCode("c", "s", "https://a/cb", ("x",), 2**40))
    return stores


def test_returned_oauth_error_commits_the_consumed_code_rfc6749_4_1_2(
    app: webtest.TestApp, db: Stores
) -> None:
    """The code taken by a failed redemption stays consumed: a retry cannot use it."""
    response = app.post("/token", {"code": "code-1", "verifier": "wrong"}, status=400)
    assert response.json == {"error": "invalid_grant"}
    assert db.codes.take("code-1") == CodeRefused("consumed")


def test_savepoint_undoes_the_partial_work_of_a_failed_grant(
    app: webtest.TestApp, db: Stores
) -> None:
    app.post("/token", {"code": "code-1", "verifier": "wrong"}, status=400)
    assert not db.revoked_access_tokens.is_revoked("partial-code-1")


def test_successful_grant_commits_everything(app: webtest.TestApp, db: Stores) -> None:
    response = app.post("/token", {"code": "code-1", "verifier": "right"}, status=200)
    assert response.json["access_token"] == "AT"
    assert db.revoked_access_tokens.is_revoked("partial-code-1")
    assert isinstance(db.codes.take("code-1"), CodeReused)


def test_replayed_code_is_refused_after_a_committed_error_rfc6749_4_1_2(
    app: webtest.TestApp, db: Stores
) -> None:
    app.post("/token", {"code": "code-1", "verifier": "wrong"}, status=400)
    app.post("/token", {"code": "code-1", "verifier": "right"}, status=400)


def test_raised_exception_aborts_everything(app: webtest.TestApp, db: Stores) -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        app.post("/raise", {"code": "code-1"})
    assert isinstance(db.codes.take("code-1"), CodeTaken)


def test_failed_commit_sends_no_token_response(app: webtest.TestApp, db: Stores) -> None:
    """Rule 3: a token response is never sent when its commit failed."""
    response = app.post(
        "/token", {"code": "code-1", "verifier": "right", "fail_commit": "1"}, status=503
    )
    assert "access_token" not in response.text
    assert response.json == {"error": "temporarily_unavailable"}
    assert isinstance(db.codes.take("code-1"), CodeTaken)  # nothing of the request stuck
    assert not db.revoked_access_tokens.is_revoked("partial-code-1")


def test_error_without_x_tm_commit_is_rolled_back_by_a_commit_veto(
    engine: Engine, db: Stores
) -> None:
    """Why the protocol views set ``x-tm: commit``: a host's commit veto aborts a 4xx."""
    app = make_app(engine, commit_veto="pyramid_tm.default_commit_veto", x_tm=False)
    app.post("/token", {"code": "code-1", "verifier": "wrong"}, status=400)
    assert isinstance(db.codes.take("code-1"), CodeTaken)


def test_replay_claim_in_its_own_transaction_survives_the_request_rfc9449_11_1(
    app: webtest.TestApp, db: Stores
) -> None:
    """The resource server's DPoP replay claim commits before the view runs, so a failing
    view cannot un-spend a proof; the request's own work still aborts."""
    with pytest.raises(RuntimeError, match="after the claim"):
        app.post("/claim", {"jti": "proof-1", "code": "code-1", "fail": "1"})
    assert not db.replay.check_and_record("proof-1", NOW + 120)
    assert isinstance(db.codes.take("code-1"), CodeTaken)
