"""The complete examples of docs/testing.rst run: their files (the code blocks with a file name
as caption; ``flows/conftest.py`` belongs to the ``flows`` example) are written into a fresh
project per example and pytest runs there, so the page cannot drift from the plugin."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from plugin_support import HOST

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "testing.rst"
_BLOCK = re.compile(
    r"^\.\. code-block:: (?P<lang>\w+)\n   :caption: (?P<name>[\w./]+)\n\n"
    r"(?P<body>(?:(?:   .*)?\n)+)",
    re.MULTILINE,
)


def example_files(example: str) -> dict[str, str]:
    """The captioned code blocks of one example of the page: file name -> source."""
    files: dict[str, str] = {}
    for match in _BLOCK.finditer(DOCS.read_text()):
        group, _, name = match["name"].rpartition("/")
        if group == example:
            files[name] = textwrap.dedent(match["body"]).strip() + "\n"
    return files


@pytest.mark.parametrize(
    ("example", "names"),
    [
        ("", {"myapi.py", "conftest.py", "test_myapi.py"}),
        ("flows", {"myapp.py", "conftest.py", "test_flows.py"}),
    ],
)
def test_the_documented_example_passes(
    pytester: pytest.Pytester, example: str, names: set[str]
) -> None:
    files = example_files(example)
    assert set(files) == names, sorted(files)
    pytester.makeini((HOST / "host_pytest.ini").read_text())  # a strict host: warnings are errors
    for name, source in files.items():
        (pytester.path / name).write_text(source)
    result = pytester.runpytest("-q")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    (tests,) = [source for name, source in files.items() if name.startswith("test_")]
    written = len(re.findall(r"^def test_", tests, re.MULTILINE))
    assert set(outcomes) == {"passed"}, result.stdout.str()
    assert outcomes["passed"] >= written
