"""The attesto tables: codes, refresh tokens and their family tombstones, DPoP nonces,
replay keys, pushed / pending authorization requests, revoked access tokens.

Revision ID: attesto_0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "attesto_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("attesto",)
depends_on: str | Sequence[str] | None = None

HASH = sa.String(64)
ID = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "attesto_authorization_codes",
        sa.Column("code_hash", HASH, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("subject", ID, nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        sa.Column("finalized", sa.Boolean(), nullable=False),
        sa.Column("family_id", ID, nullable=True),
        sa.Column("access_tokens", sa.JSON(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_attesto_authorization_codes")),
    )
    op.create_index(
        op.f("ix_attesto_authorization_codes_expires_at"),
        "attesto_authorization_codes",
        ["expires_at"],
    )

    op.create_table(
        "attesto_refresh_tokens",
        sa.Column("token_hash", HASH, nullable=False),
        sa.Column("family_id", ID, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("subject", ID, nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("family_expires_at", sa.BigInteger(), nullable=False),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        sa.Column("retry_until", sa.BigInteger(), nullable=True),
        sa.Column("successor_hash", HASH, nullable=True),
        sa.Column("successor", sa.LargeBinary(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_attesto_refresh_tokens")),
        sa.UniqueConstraint(
            "family_id",
            "generation",
            name=op.f("uq_attesto_refresh_tokens_family_id_generation"),
        ),
    )
    op.create_index(
        op.f("ix_attesto_refresh_tokens_expires_at"), "attesto_refresh_tokens", ["expires_at"]
    )
    op.create_index(
        op.f("ix_attesto_refresh_tokens_subject_client_id"),
        "attesto_refresh_tokens",
        ["subject", "client_id"],
    )

    op.create_table(
        "attesto_refresh_family_revocations",
        sa.Column("family_id", ID, nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("family_id", name=op.f("pk_attesto_refresh_family_revocations")),
    )

    for table, key, key_type in (
        ("attesto_dpop_nonces", "nonce", HASH),
        ("attesto_replays", "key", ID),
        ("attesto_revoked_access_tokens", "jti", ID),
    ):
        op.create_table(
            table,
            sa.Column(key, key_type, nullable=False),
            sa.Column("expires_at", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_expires_at"), table, ["expires_at"])

    op.create_table(
        "attesto_pushed_requests",
        sa.Column("reference_hash", HASH, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("reference_hash", name=op.f("pk_attesto_pushed_requests")),
    )
    op.create_index(
        op.f("ix_attesto_pushed_requests_expires_at"), "attesto_pushed_requests", ["expires_at"]
    )


def downgrade() -> None:
    for table in (
        "attesto_pushed_requests",
        "attesto_revoked_access_tokens",
        "attesto_replays",
        "attesto_dpop_nonces",
        "attesto_refresh_family_revocations",
        "attesto_refresh_tokens",
        "attesto_authorization_codes",
    ):
        op.drop_table(table)
