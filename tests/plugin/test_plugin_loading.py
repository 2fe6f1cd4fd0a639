"""How pytest_attesto loads: through the entry point, adding fixtures and a marker and nothing
else; without importing pyramid or webtest (DESIGN.md D21); tolerating a second registration;
failing clearly when the host forgot ``attesto_app`` or misspelt a marker option."""

from __future__ import annotations

import subprocess
import sys

import pytest
from plugin_support import write_host_project

pytest_plugins = ["pytester"]

FIXTURES = (
    "attesto_app",
    "attesto_client",
    "attesto_clock",
    "attesto_configure",
    "attesto_keystore",
    "attesto_options",
    "attesto_session_clock",
    "attesto_settings",
    "attesto_token",
    "dpop_key",
    "dpop_proof",
)


def test_the_entry_point_adds_the_fixtures_and_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    fixtures = pytester.runpytest("--fixtures").stdout.str()
    for name in FIXTURES:
        assert f"{name}" in fixtures, name
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.attesto(*, now=None" in markers


def test_installing_the_plugin_uses_no_fixture_unasked(pytester: pytest.Pytester) -> None:
    """No autouse fixture: a test that asks for nothing gets nothing of attesto."""
    pytester.makepyfile(
        """
        def test_plain(request):
            assert [n for n in request.fixturenames if n.startswith(("attesto", "dpop"))] == []
        """
    )
    pytester.runpytest("-W", "error").assert_outcomes(passed=1)


def test_loading_the_plugin_imports_neither_pyramid_nor_webtest_d21() -> None:
    script = (
        "import sys, pytest_attesto.plugin\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('pyramid', 'webob', 'webtest', 'pyramid_attesto',"
        " 'joserfc'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_missing_attesto_app_is_a_usage_error_naming_the_fix(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_api(attesto_client): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*UsageError: pytest_attesto: define an `attesto_app` fixture (in your conftest.py)*"]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("attesto(audiences='https://a.example')", "unknown option 'audiences'"),
        ("attesto('https://a.example')", "options are keyword-only"),
        ("attesto(now='yesterday')", "now must be epoch seconds or a datetime"),
        ("attesto(audience='api.example')", "audience must be an absolute http(s) URL"),
        ("attesto(token_alg='HS256')", "token_alg must be one of ES256, EdDSA, RS256, PS256"),
        ("attesto(settings=['a'])", "settings must be a dict"),
    ],
)
def test_a_bad_marker_option_fails_the_test_loudly(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    """Even a test that uses no attesto fixture: a typo must not pass silently."""
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_marked():
            pass

        @pytest.mark.{marker}
        def test_marked_with_fixture(attesto_token):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([f"*attesto marker: {message}*"])


def test_the_closest_marker_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.attesto(now=100, audience="https://module.example")

        @pytest.mark.attesto(audience="https://class.example", client_id="c")
        class TestMarked:
            @pytest.mark.attesto(now=300)
            def test_options(self, attesto_options, attesto_clock):
                assert attesto_options.now == attesto_clock.now() == 300
                assert attesto_options.audience == "https://class.example"
                assert attesto_options.client_id == "c"
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "how",
    ["conftest", "-p pytest_attesto.plugin", "-p attesto", "autoload off, -p attesto"],
)
def test_a_second_registration_changes_nothing_d21(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    write_host_project(pytester, tests=False)
    pytester.makepyfile(
        test_twice="""
        def test_api(attesto_client):
            client = attesto_client.as_subject("alice", scopes=["read:reports"], dpop=True)
            assert client.get("/api/reports").status_int == 200
        """
    )
    args: list[str] = []
    if how == "conftest":
        conftest = pytester.path / "conftest.py"
        conftest.write_text(conftest.read_text() + '\npytest_plugins = ["pytest_attesto.plugin"]\n')
    elif how.startswith("autoload off"):
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        args = ["-p", "attesto"]
    else:
        args = how.split()
    # In a subprocess: in this process the plugin module is imported already, which changes
    # what pytest does with a -p naming it.
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)


def test_no_attesto_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_api(attesto_token): pass")
    result = pytester.runpytest("-p", "no:attesto")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'attesto_token' not found*"])
