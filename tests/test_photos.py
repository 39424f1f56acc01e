"""Photo uploads are checked on the server (real image by signature and Pillow, size, count, pixel bombs),
written outside the web root, removed again when the linking transaction fails, and read back only within
the reader's scope. Store parts on both databases."""
import base64
import io

import pytest
from sqlalchemy import select

from data import photos, workflow
from data.store.schema import Case, CasePhoto
from layers.scope import NOTHING, UNRESTRICTED, Scope


def _image(fmt: str, size=(40, 30)) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, fmt)
    return buf.getvalue()


def _noisy_png() -> bytes:
    """A PNG that does not compress (random pixels): about 30 kB."""
    import os

    from PIL import Image
    buf = io.BytesIO()
    Image.frombytes("RGB", (100, 100), os.urandom(100 * 100 * 3)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("fmt,mime", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_real_images_pass_with_their_type_and_size(fmt, mime):
    data = _image(fmt, (64, 48))
    c = photos.check(data, "C:\\fakepath\\site<1>.x")
    assert (c.mime, c.width, c.height) == (mime, 64, 48)
    assert c.original_name == "site<1>.x"          # a path never survives as a name; shown escaped by Dash
    assert len(c.sha256) == 64 and c.data == data


@pytest.mark.parametrize("data,why", [
    (b"", "empty"),
    (b"<?php system($_GET['c']); ?>", "not a JPEG, PNG or WebP"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "not a JPEG, PNG or WebP"),
    (b"GIF89a" + b"\0" * 40, "not a JPEG, PNG or WebP"),
])
def test_anything_else_is_refused_whatever_its_name(data, why):
    with pytest.raises(photos.PhotoError, match=why):
        photos.check(data, "photo.jpg")


def test_a_damaged_or_disguised_image_is_refused():
    png = _image("PNG")
    with pytest.raises(photos.PhotoError, match="not a readable PNG"):
        photos.check(png[: len(png) // 2], "cut.png")
    with pytest.raises(photos.PhotoError, match="not a readable JPEG"):
        photos.check(b"\xff\xd8\xff\xe0" + b"junk" * 50, "fake.jpg")
    # A PNG header glued onto JPEG content is not what it claims.
    with pytest.raises(photos.PhotoError):
        photos.check(b"\x89PNG\r\n\x1a\n" + _image("JPEG"), "glued.png")


def test_size_count_and_pixel_limits(monkeypatch):
    monkeypatch.setenv("CGZT_PHOTO_MAX_BYTES", "2000")
    big = _noisy_png()
    assert len(big) > 2000
    with pytest.raises(photos.PhotoError, match="larger than the limit"):
        photos.check(big, "big.png")
    monkeypatch.delenv("CGZT_PHOTO_MAX_BYTES")
    monkeypatch.setenv("CGZT_PHOTO_MAX_COUNT", "2")
    with pytest.raises(photos.PhotoError, match="at most 2"):
        photos.check_all([("a.png", _image("PNG"))] * 3)
    assert len(photos.check_all([("a.png", _image("PNG"))] * 2)) == 2
    monkeypatch.setattr(photos, "MAX_PIXELS", 100 * 100)
    with pytest.raises(photos.PhotoError, match="pixels"):
        photos.check(_image("PNG", (200, 200)), "bomb.png")


def test_data_urls_from_the_browser():
    png = _image("PNG")
    assert photos.decode_data_url("data:image/png;base64," + base64.b64encode(png).decode(), "a.png") == png
    for bad in ("not a data url", "data:image/png,rawbytes", "data:image/png;base64,@@@"):
        with pytest.raises(photos.PhotoError):
            photos.decode_data_url(bad, "a.png")


def test_files_are_removed_when_the_transaction_fails(tmp_path):
    checked = photos.check_all([("a.png", _image("PNG")), ("b.jpg", _image("JPEG"))])
    with pytest.raises(RuntimeError):
        with photos.written(checked, tmp_path) as names:
            assert len(names) == 2 and all((tmp_path / n).is_file() for n in names)
            assert {n.rsplit(".", 1)[1] for n in names} == {"png", "jpg"}
            raise RuntimeError("the linking transaction failed")
    assert list(tmp_path.iterdir()) == []
    with photos.written(checked, tmp_path) as names:
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_the_default_directory_is_outside_the_web_root(monkeypatch):
    from dashboard.server import ASSETS
    monkeypatch.delenv("CGZT_PHOTO_DIR", raising=False)
    d = photos.directory()
    assert d.name == "photos" and d.parent.name == "instance"
    assert ASSETS.resolve() not in d.resolve().parents


@pytest.fixture(scope="module")
def photo_store(module_engine):
    from data.demo.seed import seed
    seed(module_engine, scale="test", seed=17)
    return module_engine


def test_linked_to_the_event_and_readable_only_in_scope(photo_store, tmp_path):
    with photo_store.connect() as conn:
        case = conn.execute(select(Case.id, Case.version, Case.grid_code, Case.department_code)
                            .where(Case.status == "handling", Case.department_code.is_not(None))
                            .order_by(Case.id).limit(1)).one()
    checked = photos.check_all([("after.png", _image("PNG"))])
    actor = workflow.Actor("li", "liaison", case.department_code, Scope(departments=(case.department_code,)))
    with photos.written(checked, tmp_path) as names, photo_store.begin() as conn:
        out = workflow.apply(conn, case.id, "feedback", actor, expected_version=case.version, note="done")
        (pid,) = photos.link(conn, case.id, out["event_id"], checked, names, "li")
    with photo_store.connect() as conn:
        row = conn.execute(select(CasePhoto).where(CasePhoto.id == pid)).mappings().one()
        assert row["event_id"] == out["event_id"] and row["uploaded_by"] == "li" and row["mime"] == "image/png"
        assert photos.for_case(conn, case.id)[out["event_id"]][0]["id"] == pid
        path, mime = photos.readable(conn, pid, Scope(departments=(case.department_code,)), tmp_path)
        assert path.read_bytes() == checked[0].data and mime == "image/png"
        assert photos.readable(conn, pid, UNRESTRICTED, tmp_path) is not None
        assert photos.readable(conn, pid, Scope(districts=(case.grid_code[:6],)), tmp_path) is not None
        other = "330205" if case.grid_code.startswith("330203") else "330203"
        assert photos.readable(conn, pid, Scope(districts=(other,)), tmp_path) is None
        assert photos.readable(conn, pid, Scope(departments=("NOPE",)), tmp_path) is None
        assert photos.readable(conn, pid, NOTHING, tmp_path) is None
        assert photos.readable(conn, "../../etc/passwd", UNRESTRICTED, tmp_path) is None
        assert photos.readable(conn, pid + 999, UNRESTRICTED, tmp_path) is None


def test_a_refusal_reads_in_chinese_and_english():
    """The workspace shows the Chinese reason; the API and the logs keep the English one."""
    with pytest.raises(photos.PhotoError) as e:
        photos.check(b"GIF89a" + b"\0" * 40, "a.gif")
    assert e.value.text("zh") == "a.gif：不是 JPEG、PNG 或 WebP 图片"
    assert e.value.text("en") == str(e.value) == "a.gif: not a JPEG, PNG or WebP image"
