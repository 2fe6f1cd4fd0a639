"""``attesto install`` on a freshly generated minimal Pyramid project (the cookiecutter
layout): the second run changes nothing, the project still works, the unfilled stubs fail
closed, and the Alembic hook-up migrates the attesto lineage."""

from __future__ import annotations

import configparser
import hashlib
import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webtest import TestApp

from pyramid_attesto.cli import main

INIT = """\
from pyramid.config import Configurator
from pyramid.response import Response


def home(request):
    return Response("home")


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.include("pyramid_tm")
        config.add_route("home", "/")
        config.add_view(home, route_name="home")
    return config.make_wsgi_app()
"""

INI = """\
###
# app configuration
###

[app:main]
use = egg:{name}

pyramid.reload_templates = true
pyramid.includes =
    pyramid_tm
{extra}
[server:main]
use = egg:waitress#main
listen = localhost:6543
"""


def _project(root: Path, name: str, *, database: bool = False) -> Path:
    project = root / name
    (project / name).mkdir(parents=True)
    (project / name / "__init__.py").write_text(INIT)
    extra = f"sqlalchemy.url = sqlite:///%(here)s/{name}.sqlite\n" if database else ""
    (project / "development.ini").write_text(INI.format(name=name, extra=extra))
    (project / "setup.py").write_text(f"from setuptools import setup\nsetup(name={name!r})\n")
    return project


def _snapshot(project: Path) -> dict[str, str]:
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _settings(ini: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    parser.read(ini)
    return {k: v for k, v in parser.items("app:main") if k not in ("here", "use")}


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[None]:
    sys.path.insert(0, str(tmp_path / "shop"))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path / "shop"))
        for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
            del sys.modules[name]


def test_install_twice_changes_nothing_the_second_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "shop", database=True)
    assert main(["install", "--project", str(project), "--route-prefix", "/mcp/oauth"]) == 0
    first = capsys.readouterr().out
    assert "next steps" in first
    after_first = _snapshot(project)
    assert "shop/attesto_policy.py" in after_first
    assert "var/attesto-keys.json" in after_first
    text = (project / "development.ini").read_text()
    assert "attesto.route_prefix = /mcp/oauth" in text
    assert "    pyramid_attesto" in text
    assert "attesto.storage = dbsession" in text
    assert "[attesto]\n" in text
    assert "script_location = pyramid_attesto:migrations" in text

    assert main(["install", "--project", str(project), "--route-prefix", "/mcp/oauth"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert _snapshot(project) == after_first


def test_installed_project_works_and_its_stubs_fail_closed(
    tmp_path: Path, importable: None, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "shop")
    assert main(["install", "--project", str(project)]) == 0
    shop: Any = importlib.import_module("shop")
    app = TestApp(
        shop.main({}, **_settings(project / "development.ini")),
        extra_environ={"HTTP_HOST": "127.0.0.1:6543"},
    )
    assert app.get("/").text == "home"  # the project's own view still works
    metadata = app.get("/.well-known/oauth-authorization-server").json
    assert metadata["issuer"] == "http://127.0.0.1:6543"
    # Fail closed: no client is known until the stub is filled in (RFC 6749 5.2).
    token = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "client_id": "any", "client_secret": "x"},
        status=401,
    )
    assert token.json["error"] == "invalid_client"
    page = app.get("/oauth/authorize?response_type=code&client_id=any", status=400)
    assert "invalid" in page.text

    policy: Any = importlib.import_module("shop.attesto_policy")
    assert policy.Clients().load_client("any") is None
    assert policy.Principals().load_principal("alice") is None
    assert policy.Consent().authenticate_resource_owner(None, None) is None
    assert policy.Consent().consent(None, None, "alice") is False


def test_the_alembic_hook_up_migrates_the_attesto_lineage(tmp_path: Path) -> None:
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    from alembic import command
    from pyramid_attesto.storage.migrate import migrations_path

    project = _project(tmp_path, "shop", database=True)
    main(["install", "--project", str(project)])
    ini = project / "development.ini"
    config = Config(str(ini), ini_section="attesto")
    assert config.get_main_option("script_location") == "pyramid_attesto:migrations"
    # This checkout's editable install maps the migrations from alembic/, so the package
    # resource path exists only in a wheel (tests/storage/test_store_wheel.py runs that).
    config.set_main_option("script_location", str(migrations_path()))
    command.upgrade(config, "heads")
    engine = create_engine(f"sqlite:///{project / 'shop.sqlite'}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert "attesto_alembic_version" in tables
    assert "attesto_authorization_codes" in tables


def test_install_needs_a_pyramid_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["install", "--project", str(tmp_path)]) == 2
    assert "development.ini" in capsys.readouterr().err
    (tmp_path / "development.ini").write_text(textwrap.dedent("[app:main]\nuse = call:x:y\n"))
    assert main(["install", "--project", str(tmp_path)]) == 2
    assert "--package" in capsys.readouterr().err
    assert main(["install", "--project", str(tmp_path), "--route-prefix", "oauth/"]) == 2
