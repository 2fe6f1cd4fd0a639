"""Shared pieces of the plugin tests: the throwaway host project (tests/plugin/host/) copied
into a pytester directory."""

from __future__ import annotations

from pathlib import Path

import pytest

HOST = Path(__file__).parent / "host"


def write_host_project(pytester: pytest.Pytester, *, tests: bool = True) -> None:
    """The host project: its API module, conftest.py, pytest.ini and (``tests``) its tests."""
    pytester.makeini((HOST / "host_pytest.ini").read_text())
    pytester.makepyfile(
        reports_api=(HOST / "reports_api.py").read_text(),
        conftest=(HOST / "host_conftest.py").read_text(),
    )
    if tests:
        pytester.makepyfile(test_reports_api=(HOST / "host_tests_api.py").read_text())
