"""case query indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Covering indexes for the dashboard's per-request case queries (layers.filters / metrics / cases), so each
GROUP BY reads one index and never the table: cases reported in a period (map, charts), cases due in a
period (结案率 / 按期结案率), cases open now (open / overdue). They carry grid_code (whose prefixes are the
street and district codes) and the filterable codes. The two single-purpose indexes they extend
(ix_cases_reported, ix_cases_status_deadline) are dropped: same leading columns, so no query loses.
Berths get (grid_code, state) for occupancy per area. Plans and timings: docs/query-plans.md.
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

FILTER_COLS = ["class_code", "source_code", "department_code"]


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as b:
        b.drop_index('ix_cases_reported')
        b.drop_index('ix_cases_status_deadline')
        b.create_index('ix_cases_reported_cover', ['reported_at', 'grid_code', 'status', 'deadline_at'] + FILTER_COLS)
        b.create_index('ix_cases_deadline_cover',
                       ['deadline_at', 'grid_code', 'status', 'registered_at', 'closed_at'] + FILTER_COLS)
        b.create_index('ix_cases_status_cover', ['status', 'deadline_at', 'grid_code'] + FILTER_COLS)
    with op.batch_alter_table('berths', schema=None) as b:
        b.create_index('ix_berths_grid_state', ['grid_code', 'state'])


def downgrade() -> None:
    with op.batch_alter_table('berths', schema=None) as b:
        b.drop_index('ix_berths_grid_state')
    with op.batch_alter_table('cases', schema=None) as b:
        b.drop_index('ix_cases_status_cover')
        b.drop_index('ix_cases_deadline_cover')
        b.drop_index('ix_cases_reported_cover')
        b.create_index('ix_cases_status_deadline', ['status', 'deadline_at'])
        b.create_index('ix_cases_reported', ['reported_at'])
