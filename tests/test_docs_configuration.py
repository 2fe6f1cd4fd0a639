"""docs/configuration.rst documents every setting of the parser, once, with its real default
(so the configuration reference cannot drift from :data:`pyramid_attesto.settings.SETTINGS`)."""

from __future__ import annotations

import re
from pathlib import Path

from pyramid_attesto.settings import SETTINGS, Setting

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.rst"
ENTRY = re.compile(r"^``attesto\.([a-z0-9_.]+)``\n((?:    .*\n|\n)+)", re.MULTILINE)


def _entries() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in ENTRY.finditer(PAGE.read_text(encoding="utf-8"))]


def _default_line(spec: Setting) -> str:
    if spec.required:
        return "Required."
    value = spec.default
    if value is None:
        return "Default: unset."
    if isinstance(value, bool):
        return f"Default: ``{'true' if value else 'false'}``."
    if isinstance(value, tuple):
        return f"Default: ``{' '.join(value)}``." if value else "Default: empty."
    return f"Default: ``{value}``."


def test_every_setting_is_documented_exactly_once() -> None:
    names = [name for name, _ in _entries()]
    assert sorted(names) == sorted(SETTINGS)
    assert len(names) == len(set(names))


def test_each_documented_default_is_the_parsers() -> None:
    for name, body in _entries():
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        assert lines[-1] == _default_line(SETTINGS[name]), name
        assert len(lines) >= 2, f"{name}: describe it"
