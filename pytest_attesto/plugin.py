"""The pytest plugin module named by the ``pytest11`` entry point.

Installing the plugin adds fixtures and markers and changes nothing else. It imports pyramid
and webtest lazily (DESIGN.md D21), so registering it costs a test session nothing.
"""

from __future__ import annotations
