"""Alembic environment of the attesto lineage (DESIGN.md D20).

The attesto tables migrate on their own: version table ``attesto_alembic_version``, branch
label ``attesto``, and an ``include_name`` filter that sees only ``attesto_*`` tables, so a
host's tables in the same database are never touched (nor proposed for autogenerate).

The database comes from, in order: a connection passed in ``config.attributes["connection"]``
(what :func:`pyramid_attesto.storage.migrate.upgrade` does), ``-x url=...`` on the command
line, or ``sqlalchemy.url`` in the ini section (``alembic -n attesto upgrade head``).
SQLite migrations run in batch mode.
"""

from __future__ import annotations

from logging.config import fileConfig

from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from alembic import context
from pyramid_attesto.storage.engine import make_engine
from pyramid_attesto.storage.tables import VERSION_TABLE, metadata, only_attesto_name

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit(
            "attesto migrations need a database: -x url=... or sqlalchemy.url in the "
            f"[{config.config_ini_section}] section"
        )
    return url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=only_attesto_name,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if config.config_file_name and config.file_config.has_section("formatters"):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


main()
