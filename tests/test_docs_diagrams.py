"""The committed sequence-diagram SVGs are what their ``.seq`` sources render (run
``python docs/diagrams/sequence.py`` after editing a source)."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

DIAGRAMS = Path(__file__).resolve().parents[1] / "docs" / "diagrams"


def _renderer() -> object:
    spec = importlib.util.spec_from_file_location("sequence", DIAGRAMS / "sequence.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sequence"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["sequence"]
    return module


def test_each_svg_is_rendered_from_its_source() -> None:
    render = _renderer().render  # type: ignore[attr-defined]
    sources = sorted(DIAGRAMS.glob("*.seq"))
    assert {s.stem for s in sources} == {"par-dpop", "mcp-connector", "refresh-rotation"}
    for source in sources:
        svg = source.with_suffix(".svg")
        assert svg.read_text("utf-8") == render(source.read_text("utf-8")), svg.name
        ET.fromstring(svg.read_bytes())  # noqa: S314 - our own committed file; well-formed XML
