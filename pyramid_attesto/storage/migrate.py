"""Run the attesto migrations: what ``attesto db upgrade`` calls (DESIGN.md D20).

The attesto lineage is its own: branch label ``attesto``, version table
``attesto_alembic_version``. The scripts live in the repository's top-level ``alembic/``
directory and ship in the wheel as ``pyramid_attesto/migrations`` (a host names them
``script_location = pyramid_attesto:migrations``); :func:`migrations_path` finds either.

>>> upgrade("sqlite:///var/app.sqlite")            # doctest: +SKIP
>>> current("sqlite:///var/app.sqlite")            # doctest: +SKIP
'attesto_0002'
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL
from sqlalchemy.pool import NullPool

import pyramid_attesto
from alembic import command
from pyramid_attesto.core.errors import ConfigurationError

from .engine import make_engine
from .tables import VERSION_TABLE

__all__ = ["alembic_config", "current", "downgrade", "migrations_path", "upgrade"]

PACKAGE_RESOURCE = "pyramid_attesto:migrations"
"""The ``script_location`` of the installed migrations, for a host's ``alembic.ini``."""


def migrations_path() -> Path:
    """The directory of the attesto migrations: installed in the package, or the checkout's
    top-level ``alembic/``."""
    package = Path(pyramid_attesto.__file__).resolve().parent
    for candidate in (package / "migrations", package.parent / "alembic"):
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    raise ConfigurationError(
        "the attesto migrations are missing: neither pyramid_attesto/migrations nor a "
        "checkout's alembic/ directory was found"
    )


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the attesto lineage.

    With ``url`` it names the database (``-x url`` and ``sqlalchemy.url`` of the ini file
    play that part on the command line).
    """
    config = Config(ini_section="attesto")
    config.set_main_option("script_location", str(migrations_path()))
    config.set_main_option("path_separator", "space")
    if url is not None:
        rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def _run(url: str | URL, action: str, revision: str) -> None:
    config = alembic_config()
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "heads") -> None:
    """Migrate the attesto tables of the database at ``url`` up to ``revision``."""
    _run(url, "upgrade", revision)


def downgrade(url: str | URL, revision: str = "base") -> None:
    """Migrate the attesto tables down to ``revision`` (``base`` drops them all)."""
    _run(url, "downgrade", revision)


def current(url: str | URL) -> str | None:
    """The attesto revision the database is at, or ``None`` before the first upgrade."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()
