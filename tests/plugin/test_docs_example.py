"""The complete example of docs/testing.rst runs: its files (the code blocks with a file name
as caption) are written into a fresh project and pytest runs there, so the page cannot drift
from the plugin."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from plugin_support import HOST

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "testing.rst"
_BLOCK = re.compile(
    r"^\.\. code-block:: (?P<lang>\w+)\n   :caption: (?P<name>[\w.]+)\n\n"
    r"(?P<body>(?:(?:   .*)?\n)+)",
    re.MULTILINE,
)


def example_files() -> dict[str, str]:
    """The captioned code blocks of the page: file name -> source."""
    files = {
        match["name"]: textwrap.dedent(match["body"]).strip() + "\n"
        for match in _BLOCK.finditer(DOCS.read_text())
    }
    assert set(files) == {"myapi.py", "conftest.py", "test_myapi.py"}, sorted(files)
    return files


def test_the_documented_example_passes(pytester: pytest.Pytester) -> None:
    files = example_files()
    pytester.makeini((HOST / "host_pytest.ini").read_text())  # a strict host: warnings are errors
    for name, source in files.items():
        (pytester.path / name).write_text(source)
    result = pytester.runpytest("-q")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    written = len(re.findall(r"^def test_", files["test_myapi.py"], re.MULTILINE))
    assert set(outcomes) == {"passed"}, result.stdout.str()
    assert outcomes["passed"] > written  # the parametrized broken proofs count one each
