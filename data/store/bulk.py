"""Fast bulk loads from DataFrames: executemany on SQLite, COPY on PostgreSQL.

Used by the demo generator and the importers alike, always inside the caller's transaction, so a load
either lands whole or not at all. Values are converted per column, vectorised, into the forms each
database stores: WKB (SQLite) or hex EWKB (PostGIS) for geometries, SQLAlchemy's text format for
timestamps on SQLite.
"""
import io

import numpy as np
import pandas as pd
import shapely
from sqlalchemy.engine import Connection

from data.store.geometry import Geometry, to_ewkb_hex
from data.store.schema import Base

CHUNK = 100_000


def _convert(df: pd.DataFrame, table, dialect: str) -> pd.DataFrame:
    out = {}
    for name in df.columns:
        col = table.c[name]
        s = df[name]
        if isinstance(col.type, Geometry):
            geoms = np.asarray(s, dtype=object)
            if dialect == "postgresql":
                out[name] = [None if g is None else to_ewkb_hex(g) for g in geoms]
            else:
                out[name] = list(shapely.to_wkb(geoms))
        elif pd.api.types.is_datetime64_any_dtype(s):
            text = s.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
            out[name] = text.where(s.notna(), None)
        elif pd.api.types.is_bool_dtype(s):
            out[name] = s.astype(int) if dialect == "sqlite" else s.map({True: "t", False: "f"})
        else:
            out[name] = s
    return pd.DataFrame(out, index=df.index)


def load_frame(conn: Connection, table_name: str, df: pd.DataFrame) -> int:
    """Append all rows of df (columns named as the table's) to table_name; returns the row count."""
    if df.empty:
        return 0
    table = Base.metadata.tables[table_name]
    dialect = conn.dialect.name
    cols = list(df.columns)
    unknown = [c for c in cols if c not in table.c]
    if unknown:
        raise KeyError(f"{table_name} has no columns {unknown}")
    for start in range(0, len(df), CHUNK):
        part = _convert(df.iloc[start:start + CHUNK], table, dialect)
        if dialect == "postgresql":
            _copy(conn, table_name, cols, part)
        else:
            obj = part.astype(object).where(part.notna(), None)
            sql = f"INSERT INTO {table_name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            conn.exec_driver_sql(sql, list(obj.itertuples(index=False, name=None)))
    return len(df)


def _copy(conn: Connection, table_name: str, cols: list[str], part: pd.DataFrame) -> None:
    buf = io.StringIO()
    # An explicit NULL marker: with COPY's default, an empty string would come back as NULL.
    part.to_csv(buf, index=False, header=False, na_rep=r"\N")
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        # Quoted: setbacks has a column named "user", a reserved word in PostgreSQL.
        quoted = ", ".join(f'"{c}"' for c in cols)
        with cur.copy(f"COPY {table_name} ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as cp:
            cp.write(buf.getvalue())


def reset_sequences(conn: Connection, table_names) -> None:
    """After COPY with explicit ids, move PostgreSQL's id sequences past the loaded ids."""
    if conn.dialect.name != "postgresql":
        return
    for t in table_names:
        if "id" in Base.metadata.tables[t].c:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), COALESCE((SELECT MAX(id) FROM {t}), 0) + 1, false)")
