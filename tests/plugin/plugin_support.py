"""Shared pieces of the plugin tests: the throwaway host project (tests/plugin/host/) copied
into a pytester directory.

The plugin tests run pytest in this process (pytester's in-process runs), which drops every
module a run imported when it ends. A module imported again by the next run is a new module,
but its parent package keeps the old one as an attribute, and Pyramid resolves the dotted
names of ``config.include`` and of views through those attributes: the next run would mix the
old ``pyramid_attesto.resource`` (and its exception classes) with a new Pyramid. So everything
the inner runs use is imported here, once, before any run.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Import-time deprecations of the pinned stack (WebOb 1.8 imports cgi, pyramid imports
    # pkg_resources): silenced here, for the import only.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    import pyramid.config
    import pyramid_tm  # noqa: F401
    import transaction  # noqa: F401
    import webtest  # noqa: F401
    import zope.sqlalchemy  # noqa: F401

    import pyramid_attesto.resource
    import pyramid_attesto.views
    import pytest_attesto.client  # noqa: F401

    for _module in pkgutil.iter_modules(pyramid_attesto.views.__path__):
        importlib.import_module(f"pyramid_attesto.views.{_module.name}")
    del pyramid

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


def write_oauth_project(pytester: pytest.Pytester, *, cookiecutter: bool = False) -> None:
    """The authorization-server host: function-scoped app, or (``cookiecutter``) built like
    the Pyramid cookiecutter with each test in a doomed transaction."""
    pytester.makeini((HOST / "host_pytest.ini").read_text())
    prefix = "tm" if cookiecutter else "oauth"
    pytester.makepyfile(
        oauth_app=(HOST / "oauth_app.py").read_text(),
        conftest=(HOST / f"{prefix}_conftest.py").read_text(),
        **{f"test_{prefix}": (HOST / f"{prefix}_tests.py").read_text()},
    )
