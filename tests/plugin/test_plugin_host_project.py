"""pytest_attesto in a throwaway host project (pytester): its tests of a protected API pass
against the real resource server, with the plugin loaded through its entry point."""

from __future__ import annotations

import pytest
from plugin_support import write_host_project

pytest_plugins = ["pytester"]


def test_the_host_suite_passes_against_the_real_resource_server(
    pytester: pytest.Pytester,
) -> None:
    write_host_project(pytester)
    result = pytester.runpytest("-q")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes == {"passed": 43}, result.stdout.str()
