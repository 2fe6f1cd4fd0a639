"""Rows written by the flows live in the test's doomed transaction and are gone after it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from pyramid_attesto.storage.tables import authorization_codes, refresh_tokens, replays


def counts(dbsession: Any) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        dbsession.execute(select(func.count()).select_from(table)).scalar_one()
        for table in (authorization_codes, refresh_tokens, replays)
    )


@pytest.mark.parametrize("round_", [1, 2])
def test_flow_rows_are_in_the_test_transaction_and_rolled_back(
    attesto_flow: Any, dbsession: Any, round_: int
) -> None:
    assert counts(dbsession) == (0, 0, 0)  # the previous round's rows were rolled back
    client = attesto_flow.register_client()
    tokens = attesto_flow.tokens(client, "alice", scopes=["read:reports"], dpop=True)
    codes, refresh, replay = counts(dbsession)
    assert (codes, refresh) == (1, 1)
    assert replay >= 1  # the token request's DPoP proof
    api = attesto_flow.client_for(tokens)
    assert api.get("/api/reports").json["sub"] == "alice"
