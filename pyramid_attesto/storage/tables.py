"""The attesto tables: SQLAlchemy Core metadata, the source of truth for the migrations.

Every table name starts with ``attesto_``; constraints and indexes are named by
:data:`NAMING_CONVENTION`, so migrations can refer to them on every database. Times are
integer seconds since the epoch (what the stores speak); codes, refresh tokens and request
references are stored only as ``hash_secret`` values (43 characters of base64url).

A host keeps these tables out of its own Alembic autogenerate with :func:`include_name` (or
:func:`include_object`) in its ``env.py``; see ``docs/storage.rst``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.sql.schema import SchemaItem

__all__ = [
    "NAMING_CONVENTION",
    "TABLE_PREFIX",
    "VERSION_TABLE",
    "authorization_codes",
    "client_id_metadata",
    "dpop_nonces",
    "include_name",
    "include_object",
    "metadata",
    "pushed_requests",
    "refresh_family_revocations",
    "refresh_tokens",
    "registered_clients",
    "replays",
    "revoked_access_tokens",
]

TABLE_PREFIX = "attesto_"
VERSION_TABLE = "attesto_alembic_version"
"""The Alembic version table of the attesto lineage (D20), apart from the host's."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_HASH = 64  # hash_secret() is 43 characters; room for another digest later
_ID = 255
_URL = 2048  # core.outbound.MAX_URL_LENGTH

authorization_codes = Table(
    "attesto_authorization_codes",
    metadata,
    Column("code_hash", String(_HASH), primary_key=True),
    Column("client_id", String(_ID), nullable=False),
    Column("subject", String(_ID), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("consumed_at", BigInteger, nullable=True),
    Column("finalized", Boolean, nullable=False),
    Column("family_id", String(_ID), nullable=True),
    Column("access_tokens", JSON, nullable=True),
    Column("data", JSON, nullable=False),
    Index(None, "expires_at"),
)

refresh_tokens = Table(
    "attesto_refresh_tokens",
    metadata,
    Column("token_hash", String(_HASH), primary_key=True),
    Column("family_id", String(_ID), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("client_id", String(_ID), nullable=False),
    Column("subject", String(_ID), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("family_expires_at", BigInteger, nullable=False),
    Column("consumed_at", BigInteger, nullable=True),
    Column("retry_until", BigInteger, nullable=True),
    Column("successor_hash", String(_HASH), nullable=True),
    Column("successor", LargeBinary, nullable=True),
    Column("data", JSON, nullable=False),
    # Also the index on family_id: a family's rows are found through its leading column.
    UniqueConstraint("family_id", "generation"),
    Index(None, "expires_at"),
    Index(None, "subject", "client_id"),
)

refresh_family_revocations = Table(
    "attesto_refresh_family_revocations",
    metadata,
    Column("family_id", String(_ID), primary_key=True),
    Column("revoked_at", BigInteger, nullable=False),
)
"""Tombstones of revoked refresh families. Sweeping never deletes them."""

dpop_nonces = Table(
    "attesto_dpop_nonces",
    metadata,
    Column("nonce", String(_HASH), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

replays = Table(
    "attesto_replays",
    metadata,
    Column("key", String(_ID), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

pushed_requests = Table(
    "attesto_pushed_requests",
    metadata,
    Column("reference_hash", String(_HASH), primary_key=True),
    Column("client_id", String(_ID), nullable=False),
    Column("pushed", Boolean, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("params", JSON, nullable=False),
    Index(None, "expires_at"),
)

revoked_access_tokens = Table(
    "attesto_revoked_access_tokens",
    metadata,
    Column("jti", String(_ID), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

registered_clients = Table(
    "attesto_registered_clients",
    metadata,
    Column("client_id", String(_ID), primary_key=True),
    Column("client_metadata", JSON, nullable=False),
    Column("secret_hash", String(_HASH), nullable=True),
    Column("registration_token_hash", String(_HASH), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Index(None, "expires_at"),
)
"""Dynamically registered clients (RFC 7591): the client's metadata and the hashes of its
secret and registration access token. ``expires_at`` is when the client secret expires
(``NULL``: never, RFC 7591 §3.2.1 ``client_secret_expires_at`` 0); sweeping deletes a client
only after that, when it can no longer authenticate."""

client_id_metadata = Table(
    "attesto_client_id_metadata",
    metadata,
    Column("url", String(_URL), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)
"""The shared cache of Client ID Metadata Documents, keyed by their URL (the client_id)."""


def _is_attesto(name: str | None) -> bool:
    return bool(name) and str(name).startswith(TABLE_PREFIX)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic ``include_name`` hook for a *host's* ``env.py``: skip the attesto tables.

    Reflected tables named ``attesto_*`` (including ``attesto_alembic_version``) are left out
    of the host's autogenerate, so it never proposes to drop them.
    """
    if type_ == "table":
        return not _is_attesto(name)
    return True


def include_object(
    obj: SchemaItem,
    name: str | None,
    type_: str,
    reflected: bool,
    compare_to: SchemaItem | None,
) -> bool:
    """Alembic ``include_object`` hook for a host's ``env.py``: skip the attesto tables and
    everything on them (indexes, constraints, columns)."""
    if type_ == "table":
        return not _is_attesto(name)
    table = getattr(obj, "table", None)
    return not (table is not None and _is_attesto(getattr(table, "name", None)))


def only_attesto_name(name: str | None, type_: str, parent_names: object) -> bool:
    """The attesto lineage's own ``include_name``: see only the attesto tables."""
    if type_ == "table":
        return _is_attesto(name) and name != VERSION_TABLE
    return True
