"""Alembic environment: runs on the connection handed over by data.store.migrate (or DATABASE_URL)."""
from alembic import context

from data.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run(connection):
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


conn = config.attributes.get("connection")
if conn is not None:
    run(conn)
else:
    from data.store.engine import make_engine
    with make_engine().begin() as c:
        run(c)
