"""case grid cover

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Make the (grid_code, reported_at) index covering for the map's per-area counts. Why: on SQLite, a GROUP
BY over ix_cases_reported_cover sorts every case of the period in a temp B-tree (81k rows for 30 days at
1M cases); an index led by grid_code hands the rows over already grouped, one skip-scan range per grid,
and no sort (docs/query-plans.md). A separate revision because 0003 was already applied to shared stores.
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as b:
        b.drop_index('ix_cases_grid_reported')
        b.create_index('ix_cases_grid_cover', ['grid_code', 'reported_at', 'status', 'deadline_at',
                                               'class_code', 'source_code', 'department_code'])


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as b:
        b.drop_index('ix_cases_grid_cover')
        b.create_index('ix_cases_grid_reported', ['grid_code', 'reported_at'])
