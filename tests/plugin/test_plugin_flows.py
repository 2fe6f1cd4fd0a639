"""attesto_flow against a host's real authorization server and API (pytester projects): the
code flow with PKCE, DPoP binding with the nonce retry, refresh, client credentials and
their refusals; and, with the Pyramid cookiecutter's doomed-transaction fixtures, the rows the
flows write live in the test's transaction and are rolled back with it."""

from __future__ import annotations

import pytest
from plugin_support import write_oauth_project

pytest_plugins = ["pytester"]


def test_the_host_flow_suite_passes(pytester: pytest.Pytester) -> None:
    write_oauth_project(pytester)
    result = pytester.runpytest("-q")
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes() == {"passed": 10}, result.stdout.str()


def test_flow_rows_live_in_the_cookiecutter_test_transaction(pytester: pytest.Pytester) -> None:
    write_oauth_project(pytester, cookiecutter=True)
    result = pytester.runpytest("-q")
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes() == {"passed": 2}, result.stdout.str()
