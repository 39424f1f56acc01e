"""berth sessions start cover

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

The KPI tiles' occupancy at a past moment (midnight, for "today" against yesterday) counts the sessions
that started in the day before it and had not ended by it: ~330k sessions at full scale. Led by
started_at alone, the index sent SQLite to the table for every one of them for ended_at and berth_id
(1.15 s); with both in the index the count reads the index only (0.23 s). It replaces the started_at
index, whose every use it serves.
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('berth_sessions', schema=None) as b:
        b.drop_index('ix_berth_sessions_start')
        b.create_index('ix_berth_sessions_start_cover', ['started_at', 'ended_at', 'berth_id'])


def downgrade() -> None:
    with op.batch_alter_table('berth_sessions', schema=None) as b:
        b.drop_index('ix_berth_sessions_start_cover')
        b.create_index('ix_berth_sessions_start', ['started_at'])
