"""Quiet imports of the web stack (DESIGN.md D21).

The plugin loads in every pytest session of an environment where it is installed, so it
imports pyramid, webob and webtest only when a fixture needs them, and then without letting
their import-time deprecations (WebOb 1.8 imports ``cgi``; pyramid imports ``pkg_resources``)
turn into errors under a host's ``filterwarnings = error``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_imports"]


@contextmanager
def quiet_imports() -> Iterator[None]:
    """Silence the import-time warnings of the pinned web stack, for the import only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
        yield
