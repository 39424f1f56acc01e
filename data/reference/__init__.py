"""Reference tables (classes, sources, departments, working calendar) loaded from the CSVs beside this file.

Loading is idempotent: rows are inserted when missing and updated when changed, never deleted, because
cases refer to them.
"""
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data.codes import CITY
from data.store.schema import Base, District, Street

HERE = Path(__file__).resolve().parent
CITY_NAME = "宁波市"


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(HERE / f"{name}.csv", dtype=str, keep_default_na=False)


def case_classes() -> pd.DataFrame:
    df = read("case_classes")
    df["limit_value"] = df["limit_value"].astype(int)
    df["in_setback"] = df["in_setback"] == "1"
    return df


def case_sources() -> pd.DataFrame:
    df = read("case_sources")
    df["verify_first"] = df["verify_first"] == "1"
    return df


def work_calendar() -> pd.DataFrame:
    df = read("work_calendar")
    df["day"] = pd.to_datetime(df["day"]).dt.date
    df["is_workday"] = df["is_workday"] == "1"
    return df


def street_department_code(street_code: str) -> str:
    return f"{street_code}JD"


def department_code(kind: str, district_code: str, street_code: str | None = None) -> str:
    """The department that handles a class's department kind in a place: the routing default."""
    kinds = read("department_kinds").set_index("kind")
    if kind == "street":
        if not street_code:
            raise ValueError("a street (属地) department needs a street code")
        return street_department_code(street_code)
    row = kinds.loc[kind]
    owner = district_code if row["level"] == "both" else CITY
    return f"{owner}{row['suffix']}"


def departments(districts: list[tuple[str, str]], streets: list[tuple[str, str, str]]) -> pd.DataFrame:
    """City departments, each district's own, and one 属地 department per street (code, name, district)."""
    rows = []
    for k in read("department_kinds").itertuples():
        rows.append((f"{CITY}{k.suffix}", f"{CITY_NAME}{k.name}", f"Ningbo {k.name_en}", k.kind, None))
        if k.level == "both":
            for dcode, dname in districts:
                rows.append((f"{dcode}{k.suffix}", f"{dname}{k.name}", f"{dname} {k.name_en}", k.kind, dcode))
    for scode, sname, dcode in streets:
        rows.append((street_department_code(scode), f"{sname}办事处", f"{sname} office", "street", dcode))
    return pd.DataFrame(rows, columns=["code", "name", "name_en", "kind", "district_code"])


def _upsert(conn: Connection, table_name: str, df: pd.DataFrame, key: str) -> None:
    table = Base.metadata.tables[table_name]
    existing = set(conn.execute(select(table.c[key])).scalars())
    records = df.to_dict("records")
    new = [r for r in records if r[key] not in existing]
    old = [r for r in records if r[key] in existing]
    if new:
        conn.execute(table.insert(), new)
    for r in old:
        conn.execute(table.update().where(table.c[key] == r[key]).values(**r))


def load(conn: Connection) -> None:
    """Load every reference table; departments follow the districts and streets already in the store."""
    _upsert(conn, "case_classes", case_classes(), "code")
    _upsert(conn, "case_sources", case_sources(), "code")
    _upsert(conn, "work_calendar", work_calendar(), "day")
    ds = [tuple(r) for r in conn.execute(select(District.code, District.name))]
    ss = [tuple(r) for r in conn.execute(select(Street.code, Street.name, Street.district_code))]
    deps = departments(ds, ss)
    deps = deps.astype(object).where(deps.notna(), None)
    _upsert(conn, "departments", deps, "code")
