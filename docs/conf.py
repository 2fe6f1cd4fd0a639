"""Sphinx configuration (built with -W by ``make test``)."""

from __future__ import annotations

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
