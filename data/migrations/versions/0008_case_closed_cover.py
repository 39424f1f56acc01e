"""case closed cover

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22

An index led by closed_at for "open at a moment in the past" (the KPI tiles' previous-period values):
open at T = still open and reported before T, plus closed at or after T and reported before T. The first
set is a range of the status index (~8k rows at 1M cases), the second a closed_at range (~80k for a 30-day
period) instead of a scan of every case reported before T (~1M).
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = ['closed_at', 'reported_at', 'status', 'deadline_at', 'grid_code', 'setback_id', 'class_code',
           'source_code', 'department_code']


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as b:
        b.create_index('ix_cases_closed_cover', COLUMNS)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as b:
        b.drop_index('ix_cases_closed_cover')
