"""Dynamically registered clients (RFC 7591) and the Client ID Metadata Document cache.

Revision ID: attesto_0002
Revises: attesto_0001
Create Date: 2026-11-28

New tables only: SQLite needs no batch operation for them (``env.py`` runs every SQLite
migration in batch mode anyway, so a later ``ALTER`` of these tables works there too).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "attesto_0002"
down_revision: str | Sequence[str] | None = "attesto_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASH = sa.String(64)
ID = sa.String(255)
URL = sa.String(2048)


def upgrade() -> None:
    op.create_table(
        "attesto_registered_clients",
        sa.Column("client_id", ID, nullable=False),
        sa.Column("client_metadata", sa.JSON(), nullable=False),
        sa.Column("secret_hash", HASH, nullable=True),
        sa.Column("registration_token_hash", HASH, nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_attesto_registered_clients")),
    )
    with op.batch_alter_table("attesto_registered_clients") as batch:
        batch.create_index(op.f("ix_attesto_registered_clients_expires_at"), ["expires_at"])

    op.create_table(
        "attesto_client_id_metadata",
        sa.Column("url", URL, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_attesto_client_id_metadata")),
    )
    with op.batch_alter_table("attesto_client_id_metadata") as batch:
        batch.create_index(op.f("ix_attesto_client_id_metadata_expires_at"), ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("attesto_client_id_metadata") as batch:
        batch.drop_index(op.f("ix_attesto_client_id_metadata_expires_at"))
    op.drop_table("attesto_client_id_metadata")
    with op.batch_alter_table("attesto_registered_clients") as batch:
        batch.drop_index(op.f("ix_attesto_registered_clients_expires_at"))
    op.drop_table("attesto_registered_clients")
