"""Routing of new cases: the class's department in the case's district or street, and a setback-class case
inside a setback space goes to the holder of its management right."""
import shapely
from sqlalchemy import select

from data import intake
from data.store.schema import CaseClass, Setback
from tests.test_api_support import api_store, inside_grid  # noqa: F401


def report(engine, lon, lat, cls):
    with intake.write_transaction(engine) as conn:
        case, _ = intake.report(conn, lon=lon, lat=lat, class_code=cls, source_code="hotline", reporter="test")
    return case


def test_setback_case_routes_to_its_manager(api_store):
    with api_store.connect() as conn:
        sb = conn.execute(select(Setback.id, Setback.geom, Setback.manager_department_code, Setback.grid_code)
                          .where(Setback.manager_department_code.is_not(None)).order_by(Setback.id).limit(1)).one()
        in_sb = conn.execute(select(CaseClass.code, CaseClass.department_kind)
                             .where(CaseClass.in_setback.is_(True)).limit(1)).one()
        other = conn.execute(select(CaseClass.code, CaseClass.department_kind)
                             .where(CaseClass.in_setback.is_(False), CaseClass.department_kind == "municipal")
                             .limit(1)).one()
    p = shapely.point_on_surface(sb.geom)
    case = report(api_store, p.x, p.y, in_sb.code)
    assert case["setback_id"] == sb.id and case["department_code"] == sb.manager_department_code
    # A class that does not belong to setback spaces keeps its own department at the same spot.
    case = report(api_store, p.x, p.y, other.code)
    assert case["setback_id"] is None and case["department_code"] == f"{case['district_code']}SZ"
    # The same setback class just outside any setback: the class's default department.
    lon, lat, _ = inside_grid(api_store, 50)
    with api_store.connect() as conn:
        from data import routing
        assert routing.setback_at(conn, lon, lat) is None
    case = report(api_store, lon, lat, in_sb.code)
    assert case["setback_id"] is None
    from data import reference
    assert case["department_code"] == reference.department_code(in_sb.department_kind, case["district_code"],
                                                                case["street_code"])


def test_street_kind_routes_to_the_street_office(api_store):
    with api_store.connect() as conn:
        street_cls = conn.execute(select(CaseClass.code).where(CaseClass.department_kind == "street")).scalars().first()
    assert street_cls is not None
    lon, lat, grid = inside_grid(api_store, 51)
    case = report(api_store, lon, lat, street_cls)
    assert case["department_code"] == f"{grid[:9]}JD"
