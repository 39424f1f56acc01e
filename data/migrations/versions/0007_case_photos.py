"""case photos

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Liaisons send photos with their feedback. The files are kept outside the web root (data/photos.py); this
table links each file to its case and workflow step and records its checked type, size and uploader.
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'case_photos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('stored_name', sa.String(length=80), nullable=False),
        sa.Column('original_name', sa.String(length=128), nullable=True),
        sa.Column('mime', sa.String(length=32), nullable=False),
        sa.Column('bytes', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('uploaded_by', sa.String(length=64), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['event_id'], ['case_events.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('stored_name'),
    )
    op.create_index('ix_case_photos_case_id', 'case_photos', ['case_id'])
    op.create_index('ix_case_photos_event_id', 'case_photos', ['event_id'])


def downgrade() -> None:
    op.drop_index('ix_case_photos_event_id', table_name='case_photos')
    op.drop_index('ix_case_photos_case_id', table_name='case_photos')
    op.drop_table('case_photos')
