"""Importers, end to end through real files and real databases (SQLite and PostGIS).

Files are written at test time from known shapes (tests/fixtures_files.py), so every expected position
is known exactly and every error can be provoked on purpose.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from sqlalchemy import func, select, text

from tests import fixtures_files as ff
from data.importers import ImportRejected, import_file
from data.store import meta
from data.store.schema import Berth, Case, CaseEvent, Community, Grid, Setback, Street

ROOT = Path(__file__).resolve().parents[1]
TO_4549 = Transformer.from_crs(4326, 4549, always_xy=True)


def metres(a, b) -> np.ndarray:
    """Distances in metres between WGS84 points, measured in the CGCS2000 GK zone (CM 120°E)."""
    ax, ay = TO_4549.transform(shapely.get_x(a), shapely.get_y(a))
    bx, by = TO_4549.transform(shapely.get_x(b), shapely.get_y(b))
    return np.hypot(np.asarray(ax) - bx, np.asarray(ay) - by)


def count(engine, model) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(model)).scalar()


def version(engine, layer):
    with engine.connect() as c:
        return meta.get(c, f"version:{layer}")


@pytest.fixture
def prepared(fresh_engine):
    """A fresh store with districts and reference tables: what a grid import needs."""
    ff.prepare_store(fresh_engine)
    return fresh_engine


@pytest.fixture
def with_grids(prepared, tmp_path):
    grids = ff.lattice()
    import_file(prepared, "grids", ff.write(grids, tmp_path / "grids.geojson"))
    return prepared, grids


# --- CRS and accuracy --------------------------------------------------------------------------------

def test_gpkg_in_4549_imports_the_same_polygons_as_its_wgs84_source(prepared, tmp_path):
    grids = ff.lattice()
    path = ff.write(grids, tmp_path / "grids_4549.gpkg", crs="EPSG:4549")
    before = version(prepared, "grids")
    result = import_file(prepared, "grids", path)
    assert result.rows == len(grids)
    assert "EPSG:4549" in result.summary()
    with prepared.connect() as c:
        stored = dict(c.execute(select(Grid.code, Grid.geom)).all())
        rows = c.execute(select(Grid.code, Grid.community_code, Grid.street_code, Grid.district_code,
                                Grid.minx, Grid.maxy, Grid.area_m2)).all()
        comms = dict(c.execute(select(Community.code, Community.name)).all())
        streets = c.execute(select(Street.code, Street.name, Street.kind)).all()
        street_dept = c.execute(text("SELECT count(*) FROM departments WHERE code = :c"),
                                {"c": f"{ff.STREET}JD"}).scalar()
    worst = 0.0
    for code, truth in zip(grids["code"], grids.geometry):
        got = stored[code]
        a = shapely.transform(truth, lambda xy: np.column_stack(TO_4549.transform(xy[:, 0], xy[:, 1])))
        b = shapely.transform(got, lambda xy: np.column_stack(TO_4549.transform(xy[:, 0], xy[:, 1])))
        worst = max(worst, shapely.hausdorff_distance(a, b))
    assert worst < 0.5, f"worst Hausdorff distance {worst:.3f} m"
    for code, comm, street, district, minx, maxy, area in rows:
        assert code.startswith(comm) and comm.startswith(street) and street.startswith(district)
        assert minx == pytest.approx(shapely.bounds(stored[code])[0]) and maxy == pytest.approx(stored[code].bounds[3])
        assert area == pytest.approx(CELL_AREA, rel=0.01)
    assert comms == {f"{ff.STREET}001": "测试社区1", f"{ff.STREET}002": "测试社区2"}
    assert [tuple(s) for s in streets] == [(ff.STREET, "测试街道", "街道")]
    assert street_dept == 1, "reference.load must create the 属地 department of a new street"
    assert version(prepared, "grids") != before


CELL_AREA = ff.CELL_M ** 2


def test_gcj02_csv_points_land_within_half_a_metre_of_the_wgs84_truth(with_grids, tmp_path):
    engine, grids = with_grids
    berths = ff.berths_frame(grids, 200)
    path = ff.write_csv(berths, tmp_path / "amap.csv", gcj02=True, lon="Longitude", lat="LATITUDE")
    result = import_file(engine, "berths", path, crs="gcj02")
    assert result.rows == 200
    with engine.connect() as c:
        got = pd.DataFrame(c.execute(select(Berth.code, Berth.lon, Berth.lat, Berth.grid_code,
                                            Berth.berth_type)).all(), columns=["code", "lon", "lat", "grid", "type"])
    got = got.set_index("code").loc[berths["code"]]
    d = metres(shapely.points(got["lon"], got["lat"]), berths.geometry.values)
    assert d.max() < 0.5, f"max error {d.max():.4f} m"
    assert set(got["type"]) == {"on_street"}, "Chinese vocabulary names map to their codes"
    truth = gpd.sjoin(berths, grids[["code", "geometry"]].rename(columns={"code": "grid"}), predicate="within")
    assert (got["grid"].to_numpy() == truth.set_index("code").loc[berths["code"], "grid"].to_numpy()).all()


def test_shapefile_without_prj_needs_the_right_crs(with_grids, tmp_path):
    engine, grids = with_grids
    berths = ff.berths_frame(grids, 30)
    path = ff.write(berths, tmp_path / "berths.shp", crs="EPSG:4549")
    path.with_suffix(".prj").unlink()
    with pytest.raises(ImportRejected, match=r"outside Ningbo.*did you give the right --crs"):
        import_file(engine, "berths", path)
    assert count(engine, Berth) == 0
    result = import_file(engine, "berths", path, crs="EPSG:4549")
    assert result.rows == 30 and "EPSG:4549 (from --crs)" in result.summary()


# --- rejections: one bad row writes nothing -----------------------------------------------------------

def _bowtie(cell: shapely.Polygon) -> shapely.Polygon:
    x0, y0, x1, y1 = cell.bounds
    return shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])


@pytest.mark.parametrize("kind", ["bad_code", "bowtie", "outside_ningbo", "unknown_class"])
def test_one_broken_row_imports_nothing_and_is_named(with_grids, tmp_path, kind):
    engine, grids = with_grids
    bad_row = 4  # 1-based data row
    if kind in ("bad_code", "bowtie"):
        layer, model = "grids", Grid
        frame = ff.lattice(origin=(121.40, 29.85))
        frame["code"] = [c.replace(ff.STREET, "330203002") for c in frame["code"]]
        if kind == "bad_code":
            frame.loc[bad_row - 1, "code"] = "3302030020010"
            reason = "must be 15 digits"
        else:
            frame.loc[bad_row - 1, "geometry"] = _bowtie(frame.geometry.iloc[bad_row - 1])
            reason = "Self-intersection"
        path = ff.write(frame, tmp_path / "grids.gpkg")
    elif kind == "outside_ningbo":
        layer, model = "berths", Berth
        frame = ff.berths_frame(grids, 10)
        frame.loc[bad_row - 1, "geometry"] = shapely.Point(116.40, 39.90)  # Beijing
        reason = "outside Ningbo"
        path = ff.write(frame, tmp_path / "berths.geojson")
    else:
        layer, model = "cases", Case
        frame = ff.cases_frame(grids, 10)
        frame.loc[bad_row - 1, "class_code"] = "E9999"
        reason = "'E9999' is not a case class"
        path = ff.write_csv(frame, tmp_path / "cases.csv")
    before_rows, before_version = count(engine, model), version(engine, layer)
    with pytest.raises(ImportRejected) as exc:
        import_file(engine, layer, path)
    msg = str(exc.value)
    assert str(path) in msg and f"row {bad_row}: " in msg and reason in msg, msg
    assert count(engine, model) == before_rows
    assert version(engine, layer) == before_version


def test_many_bad_rows_are_listed_up_to_twenty(with_grids, tmp_path):
    engine, grids = with_grids
    frame = ff.berths_frame(grids, 30)
    frame["state"] = "broken"
    with pytest.raises(ImportRejected, match=r"rows 1, 2, .*, 20 and 10 more: state is not one of"):
        import_file(engine, "berths", ff.write_csv(frame, tmp_path / "b.csv"))


def test_malformed_json_says_where(with_grids, tmp_path):
    engine, grids = with_grids
    good = json.dumps(ff.feature_collection(ff.berths_frame(grids, 5)), indent=1).splitlines()
    good[7] = '  {{{'
    path = tmp_path / "berths.geojson"
    path.write_text("\n".join(good))
    with pytest.raises(ImportRejected, match=r"malformed JSON at line 8, column \d+"):
        import_file(engine, "berths", path)
    assert count(engine, Berth) == 0


def test_truncated_geopackage_is_a_clear_error(with_grids, tmp_path):
    engine, grids = with_grids
    path = ff.write(ff.berths_frame(grids, 50), tmp_path / "berths.gpkg")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImportRejected, match=r"berths.gpkg: broken or unreadable GeoPackage"):
        import_file(engine, "berths", path)
    assert count(engine, Berth) == 0


def test_unknown_crs_and_format_and_missing_file(with_grids, tmp_path):
    engine, grids = with_grids
    path = ff.write_csv(ff.berths_frame(grids, 5), tmp_path / "b.csv")
    with pytest.raises(ImportRejected, match=r"unknown coordinate system 'EPSG:999999'"):
        import_file(engine, "berths", path, crs="EPSG:999999")
    other = tmp_path / "b.xlsx"
    other.write_bytes(b"PK")
    with pytest.raises(ImportRejected, match=r"unknown format '.xlsx'"):
        import_file(engine, "berths", other)
    with pytest.raises(ImportRejected, match=r"no such file"):
        import_file(engine, "berths", tmp_path / "nope.gpkg")
    assert count(engine, Berth) == 0


def test_metres_declared_as_degrees_is_caught(with_grids, tmp_path):
    engine, grids = with_grids
    frame = ff.lattice(origin=(121.40, 29.85)).to_crs("EPSG:4549").set_crs("EPSG:4326", allow_override=True)
    frame["code"] = [c.replace(ff.STREET, "330203002") for c in frame["code"]]
    path = ff.write(frame, tmp_path / "grids.geojson")
    before = count(engine, Grid)
    with pytest.raises(ImportRejected) as exc:
        import_file(engine, "grids", path)
    msg = str(exc.value)
    assert "rows 1, 2, 3" in msg and "did you give the right --crs?" in msg and "EPSG:4326" in msg, msg
    assert count(engine, Grid) == before


def test_missing_required_column_and_wrong_geometry_type(with_grids, tmp_path):
    engine, grids = with_grids
    frame = ff.cases_frame(grids, 5).drop(columns="source_code")
    with pytest.raises(ImportRejected, match=r"cases need the column\(s\) \['source_code'\]"):
        import_file(engine, "cases", ff.write(frame, tmp_path / "c.geojson"))
    with pytest.raises(ImportRejected, match=r"rows 1, 2, .*Polygon geometry where berths need a Point"):
        import_file(engine, "berths", ff.write(grids, tmp_path / "g.geojson"))


# --- repairs, duplicates, versions -------------------------------------------------------------------

def test_repairable_geometry_is_repaired_and_counted(prepared, tmp_path):
    grids = ff.lattice(rows=1, cols=2)
    x0, y0, x1, y1 = grids.geometry.iloc[0].bounds
    e = (x1 - x0) * 0.01  # a tiny loop at one corner: invalid, but the fix moves the area well under 1 %
    grids.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (x0 + e, y1), (x0, y1 - e),
                                                (x0 + e, y1 - e), (x0, y1), (x0, y0)])
    assert not grids.geometry.iloc[0].is_valid
    result = import_file(prepared, "grids", ff.write(grids, tmp_path / "g.geojson"))
    assert result.repaired == 1 and "1 geometry repaired" in result.summary()
    with prepared.connect() as c:
        geoms = c.execute(select(Grid.geom)).scalars().all()
    assert all(g.is_valid for g in geoms)


def test_duplicate_codes_are_rejected_in_the_file_and_against_the_store(with_grids, tmp_path):
    engine, grids = with_grids
    frame = ff.berths_frame(grids, 6)
    frame.loc[4, "code"] = frame.loc[1, "code"]
    with pytest.raises(ImportRejected, match=r"rows 2, 5: code 'B0000001' appears 2 times"):
        import_file(engine, "berths", ff.write(frame, tmp_path / "dup.geojson"))
    ok = ff.write(ff.berths_frame(grids, 6), tmp_path / "ok.geojson")
    import_file(engine, "berths", ok)
    with pytest.raises(ImportRejected, match=r"code already in the store's berths"):
        import_file(engine, "berths", ok)
    result = import_file(engine, "berths", ok, replace=True)
    assert result.replaced == 6 and count(engine, Berth) == 6


def test_grid_replace_refused_while_cases_point_at_vanishing_grids(with_grids, tmp_path):
    engine, grids = with_grids
    import_file(engine, "cases", ff.write(ff.cases_frame(grids, 40), tmp_path / "c.gpkg"))
    smaller = grids.iloc[:2]
    with pytest.raises(ImportRejected, match=r"--replace refused: .* grid code"):
        import_file(engine, "grids", ff.write(smaller, tmp_path / "few.gpkg"), replace=True)
    assert count(engine, Grid) == len(grids)
    # The same codes with a new inspector keep every reference intact: allowed, communities re-unioned.
    again = grids.assign(inspector="李四")
    result = import_file(engine, "grids", ff.write(again, tmp_path / "same.gpkg"), replace=True)
    assert result.replaced == len(grids) and "re-unioned 3 existing" in result.summary()
    with engine.connect() as c:
        assert set(c.execute(select(Grid.inspector)).scalars()) == {"李四"}


def test_cases_are_routed_timed_and_get_an_import_event(with_grids, tmp_path):
    engine, grids = with_grids
    frame = ff.cases_frame(grids, 20)
    frame.loc[0, "reported_at"] = "2026-03-02T01:00:00Z"        # 09:00 China Standard Time
    frame.loc[0, "registered_at"] = "2026-03-02T09:30:00+08:00"
    frame.loc[1, "department_code"] = "330200SZ"
    path = ff.write_csv(frame, tmp_path / "cases.csv")
    before = version(engine, "cases")
    result = import_file(engine, "cases", path)
    assert result.rows == 20
    with engine.connect() as c:
        got = pd.DataFrame(c.execute(select(Case.id, Case.code, Case.reported_at, Case.registered_at,
                                            Case.deadline_at, Case.department_code, Case.kind, Case.major_code,
                                            Case.grid_code, Case.district_code)).all()).set_index("code")
        events = c.execute(select(CaseEvent.case_id, CaseEvent.action, CaseEvent.note)).all()
    first = got.loc["C00000000"]
    assert first["reported_at"] == pd.Timestamp("2026-03-02 09:00")
    assert first["registered_at"] == pd.Timestamp("2026-03-02 09:30")
    # E0101: 4 working hours from Monday 09:30 = 2.5 h before the 12:00-13:30 break, 1.5 h after it.
    assert first["deadline_at"] == pd.Timestamp("2026-03-02 15:00")
    assert first["department_code"] == "330203HW" and first["kind"] == "event" and first["major_code"] == "E01"
    assert got.loc["C00000001", "department_code"] == "330200SZ"
    assert all(g.startswith(d) for g, d in zip(got["grid_code"], got["district_code"]))
    assert sorted(e.case_id for e in events) == sorted(got["id"])
    assert {e.action for e in events} == {"import"} and "cases.csv row 1" in sorted(e.note for e in events)[0]
    assert version(engine, "cases") != before


def test_setbacks_take_chinese_vocabulary_and_their_grid(with_grids, tmp_path):
    engine, grids = with_grids
    cell = grids.geometry.iloc[5]
    strip = shapely.box(cell.bounds[0] + 1e-4, cell.bounds[1] + 1e-4, cell.bounds[2] - 1e-4, cell.bounds[1] + 3e-4)
    frame = gpd.GeoDataFrame({"code": ["TH0001"], "owner": ["某商场"], "manager": ["鼓楼街道"], "mode": ["托管"],
                              "permitted_uses": ["停车、外摆"], "manager_department_code": [f"{ff.STREET}JD"]},
                             geometry=[strip], crs="EPSG:4326")
    import_file(engine, "setbacks", ff.write(frame, tmp_path / "s.gpkg"))
    with engine.connect() as c:
        row = c.execute(select(Setback.mode, Setback.permitted_uses, Setback.grid_code, Setback.area_m2)).one()
    assert row.mode == "entrusted" and row.permitted_uses == "parking,seating"
    assert row.grid_code == grids["code"].iloc[5] and row.area_m2 > 0
    frame.loc[0, "manager_department_code"] = "NOPE"
    frame.loc[0, "code"] = "TH0002"
    with pytest.raises(ImportRejected, match=r"row 1: manager_department_code 'NOPE'"):
        import_file(engine, "setbacks", ff.write(frame, tmp_path / "s2.gpkg"))


# --- the CLI ----------------------------------------------------------------------------------------

def test_cli_exit_codes_and_messages(with_grids, tmp_path):
    engine, grids = with_grids
    env = dict(os.environ, DATABASE_URL=engine.url.render_as_string(hide_password=False))
    good = ff.write_csv(ff.berths_frame(grids, 25), tmp_path / "b.csv", gcj02=True)
    run = subprocess.run([sys.executable, "app.py", "import", "berths", str(good), "--crs", "gcj02"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Imported 25 berths" in run.stdout and "gcj02" in run.stdout
    run = subprocess.run([sys.executable, "app.py", "import", "berths", str(good), "--crs", "gcj02"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "import rejected, nothing was written" in run.stderr and "rows 1, 2, 3" in run.stderr
    assert "Traceback" not in run.stderr
    assert count(engine, Berth) == 25


# --- property: corruption never leaves a partial write -------------------------------------------------

_corruption = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("field"), st.integers(0, 7), st.sampled_from(
        ["geometry", "code", "coordinates", "type", "state", "berth_type"]),
        st.one_of(st.none(), st.integers(-10**9, 10**9), st.floats(allow_nan=True), st.text(max_size=30),
                  st.lists(st.floats(-1e7, 1e7), max_size=3))),
)


def _corrupt(doc: dict, raw: bytes, c) -> bytes:
    if c[0] == "truncate":
        return raw[: int(len(raw) * c[1])]
    if c[0] == "flip":
        i = int((len(raw) - 1) * c[1])
        return raw[:i] + c[2] + raw[i + len(c[2]):]
    _, row, key, value = c
    doc = json.loads(json.dumps(doc))
    feat = doc["features"][row % len(doc["features"])]
    if key in ("geometry",):
        feat["geometry"] = value
    elif key in ("coordinates", "type"):
        if feat.get("geometry"):
            feat["geometry"][key] = value
    else:
        feat["properties"][key] = value
    return json.dumps(doc, allow_nan=True).encode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruption=_corruption)
def test_corrupted_geojson_never_writes_part_of_a_file(with_grids, tmp_path, corruption):
    engine, grids = with_grids
    test_corrupted_geojson_never_writes_part_of_a_file.n = getattr(
        test_corrupted_geojson_never_writes_part_of_a_file, "n", 0) + 1
    prefix = f"P{test_corrupted_geojson_never_writes_part_of_a_file.n:04d}-"
    doc = ff.feature_collection(ff.berths_frame(grids, 8, prefix=prefix))
    raw = json.dumps(doc).encode()
    path = tmp_path / f"{prefix}.geojson"
    path.write_bytes(_corrupt(doc, raw, corruption))
    before = count(engine, Berth)
    try:
        result = import_file(engine, "berths", path)
    except ImportRejected as exc:
        assert str(exc)
        assert count(engine, Berth) == before
        return
    written = json.loads(path.read_bytes())["features"]
    assert result.rows == len(written) and count(engine, Berth) == before + len(written)


def test_setback_defaults_survive_both_databases(with_grids, tmp_path):
    engine, grids = with_grids
    cell = grids.geometry.iloc[2]
    frame = gpd.GeoDataFrame({"code": ["TH0100"], "owner": ["业主"], "manager": ["执法中队"]},
                             geometry=[cell.buffer(-1e-4)], crs="EPSG:4326")
    import_file(engine, "setbacks", ff.write(frame, tmp_path / "s.geojson"))
    with engine.connect() as c:
        row = c.execute(select(Setback.mode, Setback.permitted_uses, Setback.user)).one()
    assert (row.mode, row.permitted_uses, row.user) == ("self", "", None)


def test_seeded_city_grids_round_trip_through_a_4549_geopackage(seeded_engine, prepared, tmp_path):
    """The demo store's grids, exported as a surveyor would hand them over, import to the same shapes."""
    with seeded_engine.connect() as c:
        src = pd.DataFrame(c.execute(select(Grid.code, Grid.inspector, Grid.geom)).all(),
                           columns=["code", "inspector", "geom"])
    assert len(src) > 0
    gdf = gpd.GeoDataFrame(src[["code", "inspector"]], geometry=list(src["geom"]), crs="EPSG:4326")
    result = import_file(prepared, "grids", ff.write(gdf, tmp_path / "city.gpkg", crs="EPSG:4549"))
    assert result.rows == len(src)
    with prepared.connect() as c:
        got = dict(c.execute(select(Grid.code, Grid.geom)).all())

    def gk(g):
        return shapely.transform(g, lambda xy: np.column_stack(TO_4549.transform(xy[:, 0], xy[:, 1])))
    worst = max(shapely.hausdorff_distance(gk(g), gk(got[code])) for code, g in zip(src["code"], src["geom"]))
    assert worst < 0.5, f"worst Hausdorff distance {worst:.3f} m"


def test_case_status_needs_its_stage_times(with_grids, tmp_path):
    engine, grids = with_grids
    frame = ff.cases_frame(grids, 5)
    frame.loc[2, "status"] = "结案"          # closed, by its Chinese name, but no closed_at
    frame.loc[3, "registered_at"] = None     # registered without a registration time
    with pytest.raises(ImportRejected) as exc:
        import_file(engine, "cases", ff.write_csv(frame, tmp_path / "c.csv"))
    msg = str(exc.value)
    assert "row 3: a closed case needs closed_at" in msg and "row 4: a registered case" in msg, msg
    assert count(engine, Case) == 0


def test_cases_in_a_setback_link_to_it_and_go_to_its_manager(with_grids, tmp_path):
    engine, grids = with_grids
    cell = grids.geometry.iloc[0]
    strip = cell.buffer(-1e-4)
    frame = gpd.GeoDataFrame({"code": ["TH0200"], "owner": ["业主"], "manager": ["测试街道"],
                              "manager_department_code": [f"{ff.STREET}JD"]}, geometry=[strip], crs="EPSG:4326")
    import_file(engine, "setbacks", ff.write(frame, tmp_path / "s.geojson"))
    cases = ff.cases_frame(grids, 3)
    cases["class_code"] = "E0104"  # 乱堆物堆料: a setback class, routed to enforcement by default
    cases.loc[0, "geometry"] = strip.centroid
    cases.loc[1, "geometry"] = grids.geometry.iloc[7].centroid
    import_file(engine, "cases", ff.write(cases, tmp_path / "c.gpkg"))
    with engine.connect() as c:
        got = {r.code: r for r in c.execute(select(Case.code, Case.setback_id, Case.department_code))}
        sid = c.execute(select(Setback.id)).scalar()
    assert (got["C00000000"].setback_id, got["C00000000"].department_code) == (sid, f"{ff.STREET}JD")
    assert (got["C00000001"].setback_id, got["C00000001"].department_code) == (None, "330203ZF")


_CASE_COLUMNS = ["code", "class_code", "source_code", "status", "reported_at", "registered_at", "closed_at",
                 "lon", "lat", "department_code", "priority", "description"]
_cell = st.one_of(st.just(""), st.text(max_size=40), st.integers(-10**12, 10**12).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["2026-02-30 25:61", "NaT", "1e400", "0x1F", "上报", "结案", "closed", "urgent",
                                   "E0101", "Z9999", "121.5", "29.8", "\x00", "=cmd|' /C calc'!A0", '"', "\n"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(_CASE_COLUMNS), _cell), min_size=1, max_size=6),
       drop=st.one_of(st.none(), st.sampled_from(_CASE_COLUMNS)))
def test_fuzzed_case_csv_is_imported_whole_or_refused_whole(with_grids, tmp_path, edits, drop):
    """Any cell of a cases CSV replaced by junk (or a column dropped): the file imports whole or not at all,
    and a refusal is an ImportRejected with a message, never another exception."""
    engine, grids = with_grids
    n = getattr(test_fuzzed_case_csv_is_imported_whole_or_refused_whole, "n", 0) + 1
    test_fuzzed_case_csv_is_imported_whole_or_refused_whole.n = n
    frame = ff.cases_frame(grids, 6, prefix=f"F{n:04d}-")
    path = ff.write_csv(frame, tmp_path / f"f{n}.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for row, col, value in edits:
        if col in df.columns:
            df.loc[row % len(df), col] = value
    if drop in df.columns:
        df = df.drop(columns=drop)
    df.to_csv(path, index=False)
    before = (count(engine, Case), count(engine, CaseEvent))
    try:
        result = import_file(engine, "cases", path)
    except ImportRejected as exc:
        assert str(exc)
        assert (count(engine, Case), count(engine, CaseEvent)) == before
        return
    assert result.rows == len(df)
    assert count(engine, Case) == before[0] + len(df)
