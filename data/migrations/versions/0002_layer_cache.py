"""layer cache

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Built map layers (gzipped geobuf) live in the store, keyed by layer, variant and data version, so every
worker process and every host behind a balancer serves the same bytes and each version is built once.
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'layer_cache',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('variant', sa.String(length=16), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('etag', sa.String(length=64), nullable=False),
        sa.Column('features', sa.Integer(), nullable=False),
        sa.Column('raw_bytes', sa.Integer(), nullable=False),
        sa.Column('body_gz', sa.LargeBinary(), nullable=False),
        sa.Column('built_at', sa.DateTime(), nullable=False),
        sa.Column('build_ms', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'variant', 'version'),
    )


def downgrade() -> None:
    op.drop_table('layer_cache')
