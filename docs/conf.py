"""Sphinx configuration (built with -W by ``make test``)."""

from __future__ import annotations

import warnings

# pyramid 2.1 imports pkg_resources when autodoc imports it; the notice is not ours.
warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)

project = "pyramid_attesto"
author = "pyramid_attesto developers"
copyright = "2026, pyramid_attesto developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
