"""initial store

Revision ID: 0001
Revises: 
Create Date: 2026-11-22

The whole schema of data.store.schema; on PostgreSQL also PostGIS, GiST indexes and generated point columns.
"""
from alembic import op
import sqlalchemy as sa
import data.store.geometry


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _require_postgis()
    op.create_table('berths',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('road_name', sa.String(length=64), nullable=True),
    sa.Column('segment_code', sa.String(length=32), nullable=True),
    sa.Column('berth_type', sa.String(length=12), nullable=False),
    sa.Column('vehicle', sa.String(length=12), nullable=False),
    sa.Column('charge_zone', sa.String(length=8), nullable=True),
    sa.Column('sensor', sa.String(length=12), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_since', sa.DateTime(), nullable=True),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=9), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('berths', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_berths_district_code'), ['district_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_berths_grid_code'), ['grid_code'], unique=False)
        batch_op.create_index('ix_berths_lon_lat', ['lon', 'lat'], unique=False)
        batch_op.create_index(batch_op.f('ix_berths_segment_code'), ['segment_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_berths_street_code'), ['street_code'], unique=False)

    op.create_table('case_classes',
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('major_code', sa.String(length=4), nullable=False),
    sa.Column('major_name', sa.String(length=32), nullable=False),
    sa.Column('major_name_en', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('name_en', sa.String(length=64), nullable=False),
    sa.Column('limit_value', sa.Integer(), nullable=False),
    sa.Column('limit_unit', sa.String(length=12), nullable=False),
    sa.Column('department_kind', sa.String(length=16), nullable=False),
    sa.Column('in_setback', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('case_classes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_classes_major_code'), ['major_code'], unique=False)

    op.create_table('case_sources',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('name_en', sa.String(length=64), nullable=False),
    sa.Column('verify_first', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('departments',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=96), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=True),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_departments_district_code'), ['district_code'], unique=False)

    op.create_table('districts',
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('name_en', sa.String(length=64), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('geom', data.store.geometry.Geometry('MULTIPOLYGON'), nullable=False),
    sa.Column('minx', sa.Float(), nullable=False),
    sa.Column('miny', sa.Float(), nullable=False),
    sa.Column('maxx', sa.Float(), nullable=False),
    sa.Column('maxy', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('work_calendar',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('is_workday', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('berth_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('berth_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['berth_id'], ['berths.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('berth_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_berth_sessions_berth_start', ['berth_id', 'started_at'], unique=False)
        batch_op.create_index('ix_berth_sessions_start', ['started_at'], unique=False)

    op.create_table('setbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('road_name', sa.String(length=64), nullable=True),
    sa.Column('segment_code', sa.String(length=32), nullable=True),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('user', sa.String(length=64), nullable=True),
    sa.Column('manager', sa.String(length=64), nullable=False),
    sa.Column('manager_department_code', sa.String(length=16), nullable=True),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('permitted_uses', sa.String(length=128), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=9), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('geom', data.store.geometry.Geometry('MULTIPOLYGON'), nullable=False),
    sa.Column('minx', sa.Float(), nullable=False),
    sa.Column('miny', sa.Float(), nullable=False),
    sa.Column('maxx', sa.Float(), nullable=False),
    sa.Column('maxy', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['manager_department_code'], ['departments.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('setbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_setbacks_district_code'), ['district_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_setbacks_grid_code'), ['grid_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_setbacks_street_code'), ['street_code'], unique=False)

    op.create_table('streets',
    sa.Column('code', sa.String(length=9), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('name_en', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('geom', data.store.geometry.Geometry('MULTIPOLYGON'), nullable=False),
    sa.Column('minx', sa.Float(), nullable=False),
    sa.Column('miny', sa.Float(), nullable=False),
    sa.Column('maxx', sa.Float(), nullable=False),
    sa.Column('maxy', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['district_code'], ['districts.code'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('streets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_streets_district_code'), ['district_code'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('source_code', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('major_code', sa.String(length=4), nullable=False),
    sa.Column('class_code', sa.String(length=8), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('address', sa.String(length=128), nullable=True),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=9), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('setback_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('department_code', sa.String(length=16), nullable=True),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('reported_at', sa.DateTime(), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('deadline_at', sa.DateTime(), nullable=True),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('rework_count', sa.Integer(), nullable=False),
    sa.Column('return_count', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['class_code'], ['case_classes.code'], ),
    sa.ForeignKeyConstraint(['department_code'], ['departments.code'], ),
    sa.ForeignKeyConstraint(['setback_id'], ['setbacks.id'], ),
    sa.ForeignKeyConstraint(['source_code'], ['case_sources.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_department_status', ['department_code', 'status'], unique=False)
        batch_op.create_index('ix_cases_district_reported', ['district_code', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_grid_reported', ['grid_code', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_lon_lat', ['lon', 'lat'], unique=False)
        batch_op.create_index('ix_cases_reported', ['reported_at'], unique=False)
        batch_op.create_index('ix_cases_status_deadline', ['status', 'deadline_at'], unique=False)
        batch_op.create_index('ix_cases_street_reported', ['street_code', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_updated', ['updated_at'], unique=False)

    op.create_table('communities',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=9), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('geom', data.store.geometry.Geometry('MULTIPOLYGON'), nullable=False),
    sa.Column('minx', sa.Float(), nullable=False),
    sa.Column('miny', sa.Float(), nullable=False),
    sa.Column('maxx', sa.Float(), nullable=False),
    sa.Column('maxy', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['street_code'], ['streets.code'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('communities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_communities_district_code'), ['district_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_communities_street_code'), ['street_code'], unique=False)

    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('department_code', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_events_case_id'), ['case_id'], unique=False)

    op.create_table('grids',
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=9), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('inspector', sa.String(length=32), nullable=True),
    sa.Column('geom', data.store.geometry.Geometry('MULTIPOLYGON'), nullable=False),
    sa.Column('minx', sa.Float(), nullable=False),
    sa.Column('miny', sa.Float(), nullable=False),
    sa.Column('maxx', sa.Float(), nullable=False),
    sa.Column('maxy', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grids_community_code'), ['community_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_grids_district_code'), ['district_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_grids_street_code'), ['street_code'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _postgis_indexes()


def _require_postgis() -> None:
    bind = op.get_bind()
    have = bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").scalar()
    if have:
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION postgis")
    except Exception as exc:
        raise RuntimeError(
            "PostGIS is not installed in this database and this user cannot create it: "
            "ask the DBA to run CREATE EXTENSION postgis (Debian: apt install postgresql-15-postgis-3)") from exc


def _postgis_indexes() -> None:
    for table in ("districts", "streets", "communities", "grids", "setbacks"):
        op.execute(f"CREATE INDEX ix_{table}_geom ON {table} USING gist (geom)")
    for table in ("berths", "cases"):
        op.execute(f"ALTER TABLE {table} ADD COLUMN geom geometry(Point, 4326) "
                   f"GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED")
        op.execute(f"CREATE INDEX ix_{table}_geom ON {table} USING gist (geom)")


def downgrade() -> None:
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grids_street_code'))
        batch_op.drop_index(batch_op.f('ix_grids_district_code'))
        batch_op.drop_index(batch_op.f('ix_grids_community_code'))

    op.drop_table('grids')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_events_case_id'))

    op.drop_table('case_events')
    with op.batch_alter_table('communities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_communities_street_code'))
        batch_op.drop_index(batch_op.f('ix_communities_district_code'))

    op.drop_table('communities')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_updated')
        batch_op.drop_index('ix_cases_street_reported')
        batch_op.drop_index('ix_cases_status_deadline')
        batch_op.drop_index('ix_cases_reported')
        batch_op.drop_index('ix_cases_lon_lat')
        batch_op.drop_index('ix_cases_grid_reported')
        batch_op.drop_index('ix_cases_district_reported')
        batch_op.drop_index('ix_cases_department_status')

    op.drop_table('cases')
    with op.batch_alter_table('streets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_streets_district_code'))

    op.drop_table('streets')
    with op.batch_alter_table('setbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_setbacks_street_code'))
        batch_op.drop_index(batch_op.f('ix_setbacks_grid_code'))
        batch_op.drop_index(batch_op.f('ix_setbacks_district_code'))

    op.drop_table('setbacks')
    with op.batch_alter_table('berth_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_berth_sessions_start')
        batch_op.drop_index('ix_berth_sessions_berth_start')

    op.drop_table('berth_sessions')
    op.drop_table('work_calendar')
    op.drop_table('meta')
    op.drop_table('districts')
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_departments_district_code'))

    op.drop_table('departments')
    op.drop_table('case_sources')
    with op.batch_alter_table('case_classes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_classes_major_code'))

    op.drop_table('case_classes')
    with op.batch_alter_table('berths', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_berths_street_code'))
        batch_op.drop_index(batch_op.f('ix_berths_segment_code'))
        batch_op.drop_index('ix_berths_lon_lat')
        batch_op.drop_index(batch_op.f('ix_berths_grid_code'))
        batch_op.drop_index(batch_op.f('ix_berths_district_code'))

    op.drop_table('berths')
