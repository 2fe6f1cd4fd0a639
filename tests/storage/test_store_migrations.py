"""The attesto Alembic lineage (DESIGN.md D20): standalone and beside a host's migrations.

On SQLite and PostgreSQL: upgrade to head, downgrade to base, and an autogenerate
comparison against :data:`pyramid_attesto.storage.metadata` that finds no difference. The
host scenarios build a small host project in ``tmp_path`` with its own lineage.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import main as alembic_main
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, Column, Engine, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.pool import NullPool

from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.storage import include_name, include_object, make_engine, metadata
from pyramid_attesto.storage.migrate import alembic_config, current, downgrade, migrations_path
from pyramid_attesto.storage.migrate import upgrade as attesto_upgrade
from pyramid_attesto.storage.tables import VERSION_TABLE, only_attesto_name

ATTESTO_TABLES = {t.name for t in metadata.sorted_tables}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (a fresh schema on PostgreSQL), as a URL string."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.sqlite'}"
    url: URL = request.getfixturevalue("postgresql_schemas")()
    return url.render_as_string(hide_password=False)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": only_attesto_name}
        )
        return list(compare_metadata(context, metadata))


def test_upgrade_creates_the_tables_the_models_describe(db_url: str, engine: Engine) -> None:
    assert current(db_url) is None
    attesto_upgrade(db_url)
    assert current(db_url) == "attesto_0002"
    assert _tables(engine) == ATTESTO_TABLES | {VERSION_TABLE}
    assert _diff(engine) == []


def test_downgrade_to_base_drops_every_attesto_table(db_url: str, engine: Engine) -> None:
    attesto_upgrade(db_url)
    downgrade(db_url)
    assert current(db_url) is None
    assert _tables(engine) <= {VERSION_TABLE}
    attesto_upgrade(db_url)  # and back up again
    assert _diff(engine) == []


CLIENT_TABLES = {"attesto_registered_clients", "attesto_client_id_metadata"}


def test_0002_adds_the_client_tables_to_a_0001_database(db_url: str, engine: Engine) -> None:
    """A deployment at 0001 (with rows) upgrades to 0002, and 0002 goes back down to 0001
    without touching the 0001 tables."""
    attesto_upgrade(db_url, "attesto_0001")
    assert _tables(engine) == (ATTESTO_TABLES - CLIENT_TABLES) | {VERSION_TABLE}
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO attesto_replays (key, expires_at) VALUES ('k', 1)"))
    attesto_upgrade(db_url)
    assert current(db_url) == "attesto_0002"
    assert _tables(engine) == ATTESTO_TABLES | {VERSION_TABLE}
    assert _diff(engine) == []
    indexes = {
        name: {ix["name"] for ix in inspect(engine).get_indexes(name)} for name in CLIENT_TABLES
    }
    assert indexes == {
        "attesto_registered_clients": {"ix_attesto_registered_clients_expires_at"},
        "attesto_client_id_metadata": {"ix_attesto_client_id_metadata_expires_at"},
    }
    downgrade(db_url, "attesto_0001")
    assert current(db_url) == "attesto_0001"
    assert _tables(engine) == (ATTESTO_TABLES - CLIENT_TABLES) | {VERSION_TABLE}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT key FROM attesto_replays")).scalar() == "k"


def test_upgrade_is_idempotent(db_url: str) -> None:
    attesto_upgrade(db_url)
    attesto_upgrade(db_url)
    assert current(db_url) == "attesto_0002"


def test_migrations_are_found_in_the_checkout() -> None:
    path = migrations_path()
    assert (path / "env.py").is_file()
    assert (path / "versions").is_dir()


def test_unsupported_database_is_refused_before_migrating() -> None:
    with pytest.raises(ConfigurationError, match="not supported"):
        attesto_upgrade("mysql+pymysql://u@localhost/db")


def test_offline_sql_rendering_names_the_attesto_version_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from alembic import command

    config = alembic_config("sqlite:///offline.sqlite")
    command.upgrade(config, "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE attesto_alembic_version" in sql
    assert "CREATE TABLE attesto_refresh_family_revocations" in sql


def test_alembic_command_line_with_an_attesto_section(db_url: str, engine: Engine) -> None:
    """``alembic -n attesto upgrade head``, the ini section a host adds (D20)."""
    ini = migrations_path() / "alembic.ini"
    alembic_main(["-c", str(ini), "-n", "attesto", "-x", f"url={db_url}", "upgrade", "head"])
    assert current(db_url) == "attesto_0002"
    alembic_main(["-c", str(ini), "-n", "attesto", "-x", f"url={db_url}", "downgrade", "base"])
    assert current(db_url) is None


# A host project with its own migrations ---------------------------------------------------

HOST_ENV = """
from alembic import context
from sqlalchemy import Column, Integer, MetaData, String, Table, engine_from_config, pool

from pyramid_attesto.storage import include_name, include_object

metadata = MetaData()
Table("widgets", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))

config = context.config
filtered = config.get_main_option("filter_attesto") == "yes"
engine = engine_from_config(
    config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool
)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name if filtered else None,
        include_object=include_object if filtered else None,
    )
    with context.begin_transaction():
        context.run_migrations()
"""

HOST_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "host_0001"
down_revision = None
branch_labels = ("host",)
depends_on = None


def upgrade():
    op.create_table(
        "widgets", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50))
    )


def downgrade():
    op.drop_table("widgets")
"""


def _host_project(root: Path, db_url: str, *, attesto_location: str, merged: bool) -> Path:
    """A host's alembic.ini: its own lineage in [alembic], attesto's in [attesto]."""
    (root / "host_migrations" / "versions").mkdir(parents=True)
    (root / "host_migrations" / "env.py").write_text(HOST_ENV)
    (root / "host_migrations" / "versions" / "host_0001.py").write_text(HOST_REVISION)
    url = db_url.replace("%", "%%")
    locations = "%(here)s/host_migrations/versions"
    if merged:
        locations += f" {attesto_location}/versions"
    ini = root / "alembic.ini"
    ini.write_text(
        textwrap.dedent(
            f"""\
            [alembic]
            script_location = %(here)s/host_migrations
            path_separator = space
            version_locations = {locations}
            sqlalchemy.url = {url}
            filter_attesto = yes

            [attesto]
            script_location = {attesto_location}
            path_separator = space
            sqlalchemy.url = {url}
            """
        )
    )
    return ini


def test_host_runs_its_lineage_and_attestos_side_by_side_d20(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    ini = str(
        _host_project(tmp_path, db_url, attesto_location=str(migrations_path()), merged=False)
    )
    alembic_main(["-c", ini, "upgrade", "head"])
    alembic_main(["-c", ini, "-n", "attesto", "upgrade", "head"])
    assert _tables(engine) == ATTESTO_TABLES | {VERSION_TABLE, "widgets", "alembic_version"}
    with engine.connect() as connection:
        host = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert host == "host_0001"
    assert current(db_url) == "attesto_0002"
    # Each lineage downgrades alone.
    alembic_main(["-c", ini, "-n", "attesto", "downgrade", "base"])
    assert "widgets" in _tables(engine)
    assert not _tables(engine) & (ATTESTO_TABLES)


class _HostMetadata:
    metadata = MetaData()
    Table("widgets", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))


def test_host_autogenerate_ignores_the_attesto_tables(db_url: str, engine: Engine) -> None:
    """The filter a host puts in its env.py keeps attesto's tables out of its autogenerate."""
    attesto_upgrade(db_url)
    _HostMetadata.metadata.create_all(engine)
    with engine.connect() as connection:
        unfiltered = MigrationContext.configure(connection)
        filtered = MigrationContext.configure(
            connection, opts={"include_name": include_name, "include_object": include_object}
        )
        noisy = compare_metadata(unfiltered, _HostMetadata.metadata)
        quiet = compare_metadata(filtered, _HostMetadata.metadata)
    dropped = {diff[1].name for diff in noisy if diff[0] == "remove_table"}  # type: ignore[index]
    assert dropped == ATTESTO_TABLES | {VERSION_TABLE}
    assert quiet == []


def test_include_object_skips_indexes_of_attesto_tables() -> None:
    index = next(iter(metadata.tables["attesto_replays"].indexes))
    assert not include_object(index, index.name, "index", False, None)
    widgets = _HostMetadata.metadata.tables["widgets"]
    assert include_object(widgets, "widgets", "table", False, None)
    assert include_object(widgets.c.id, "id", "column", False, None)


def test_host_merging_the_attesto_lineage_by_branch_label(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    """``version_locations`` + branch label ``attesto``: one version table, two heads."""
    ini = str(_host_project(tmp_path, db_url, attesto_location=str(migrations_path()), merged=True))
    alembic_main(["-c", ini, "upgrade", "attesto@head"])
    assert _tables(engine) >= ATTESTO_TABLES
    assert "widgets" not in _tables(engine)
    alembic_main(["-c", ini, "upgrade", "heads"])
    with engine.connect() as connection:
        heads = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    assert heads == {"host_0001", "attesto_0002"}
