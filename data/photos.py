"""Photos that liaisons send with their feedback: checked on the server, kept outside the web root.

Why this way: an upload is hostile input until proven otherwise. A file is accepted only when its first
bytes are a JPEG, PNG or WebP signature AND Pillow parses it as that same format within a pixel limit (a
renamed script or a decompression bomb fails here, whatever its name or declared type). Files are written
under a configured directory (CGZT_PHOTO_DIR, default instance/photos/, never under assets/) with a random
name, so nothing a user sends decides a path; they are served back only through the dashboard's photo route,
which checks that the signed-in user's scope permits the photo's case.

The file is written before the database row commits; `written()` removes the files again when the
transaction that links them fails, so a failed action leaves neither rows nor files.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import secrets
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data.clock import now_cst
from data.refusal import Refusal
from data.store.schema import Case, CasePhoto

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "instance" / "photos"
DEFAULT_MAX_BYTES = 3 * 1024 * 1024      # three of them base64-encoded stay under the 16 MiB request limit
DEFAULT_MAX_COUNT = 3
MAX_PIXELS = 40_000_000                  # a 40-megapixel phone photo; more is a decompression bomb
# format: (mime, extension, signature test on the first bytes)
FORMATS = {
    "JPEG": ("image/jpeg", "jpg", lambda b: b[:3] == b"\xff\xd8\xff"),
    "PNG": ("image/png", "png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    "WEBP": ("image/webp", "webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
}
photos = CasePhoto.__table__


class PhotoError(Refusal, ValueError):
    """A refused upload; the message names the file and the reason, for people."""


@dataclass(frozen=True)
class Checked:
    """An upload that passed every check, ready to be written."""
    data: bytes
    original_name: str
    mime: str
    ext: str
    width: int
    height: int
    sha256: str


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise PhotoError(f"{name} must be a whole number, got {raw!r}", f"配置 {name} 须为整数") from None


def directory() -> Path:
    """CGZT_PHOTO_DIR, default instance/photos/ under the repository (outside assets/, the web root)."""
    raw = os.environ.get("CGZT_PHOTO_DIR", "").strip()
    return Path(raw).expanduser().resolve() if raw else DEFAULT_DIR


def max_bytes() -> int:
    return _env_int("CGZT_PHOTO_MAX_BYTES", DEFAULT_MAX_BYTES)


def max_count() -> int:
    return _env_int("CGZT_PHOTO_MAX_COUNT", DEFAULT_MAX_COUNT)


def _clean_name(name) -> str:
    name = os.path.basename(str(name or "").replace("\\", "/")).strip()
    return "".join(ch for ch in name if ch.isprintable())[:128] or "photo"


def check(data: bytes, name: str = "photo") -> Checked:
    """The upload as Checked, or PhotoError saying why not (empty, too large, not a JPEG/PNG/WebP image,
    damaged, too many pixels)."""
    label = _clean_name(name)
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise PhotoError(f"{label}: the file is empty", f"{label}：文件为空")
    limit = max_bytes()
    if len(data) > limit:
        raise PhotoError(f"{label}: {len(data) / 1024 / 1024:.1f} MiB is larger than the limit of "
                         f"{limit / 1024 / 1024:.1f} MiB",
                         f"{label}：{len(data) / 1024 / 1024:.1f} MiB，超过 {limit / 1024 / 1024:.1f} MiB 上限")
    head = bytes(data[:16])
    fmt = next((f for f, (_, _, sig) in FORMATS.items() if sig(head)), None)
    if fmt is None:
        raise PhotoError(f"{label}: not a JPEG, PNG or WebP image", f"{label}：不是 JPEG、PNG 或 WebP 图片")
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise PhotoError(f"{label}: {width}×{height} pixels is more than {MAX_PIXELS:,} allowed",
                                     f"{label}：{width}×{height} 像素，超过 {MAX_PIXELS:,} 像素上限")
                if im.format != fmt:
                    raise PhotoError(f"{label}: the content is {im.format}, not the {fmt} its header says",
                                     f"{label}：内容为 {im.format}，与文件头的 {fmt} 不符")
                im.verify()
            with Image.open(io.BytesIO(data)) as im:   # verify() leaves the image unusable: decode fully
                im.load()
    except PhotoError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for broken files
        raise PhotoError(f"{label}: not a readable {fmt} image ({type(exc).__name__})",
                         f"{label}：{fmt} 图片已损坏，无法读取") from None
    mime, ext, _ = FORMATS[fmt]
    return Checked(bytes(data), label, mime, ext, width, height, hashlib.sha256(data).hexdigest())


def check_all(uploads: list[tuple[str, bytes]]) -> list[Checked]:
    """Check a batch of (name, bytes); PhotoError on the first bad one or when there are too many."""
    uploads = list(uploads or [])
    if len(uploads) > max_count():
        raise PhotoError(f"{len(uploads)} photos: at most {max_count()} may be sent with one step",
                         f"{len(uploads)} 张照片：每步最多 {max_count()} 张")
    return [check(data, name) for name, data in uploads]


def decode_data_url(content: str, name: str) -> bytes:
    """The bytes of a browser upload ('data:<type>;base64,<data>', as dcc.Upload sends it)."""
    label = _clean_name(name)
    if not isinstance(content, str) or "," not in content:
        raise PhotoError(f"{label}: the upload is not a file", f"{label}：上传的不是文件")
    head, _, body = content.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64"):
        raise PhotoError(f"{label}: the upload is not a base64 data URL", f"{label}：上传格式不正确")
    if len(body) > max_bytes() * 4 // 3 + 8:
        raise PhotoError(f"{label}: larger than the limit of {max_bytes() / 1024 / 1024:.1f} MiB",
                         f"{label}：超过 {max_bytes() / 1024 / 1024:.1f} MiB 上限")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise PhotoError(f"{label}: the upload is damaged (bad base64)", f"{label}：上传内容已损坏") from None


@contextmanager
def written(checked: list[Checked], folder: Path | None = None):
    """Write the files under random names; yields their names. Any exception inside the block (the
    transaction that links them failed) removes them again before it propagates."""
    folder = Path(folder) if folder is not None else directory()
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    try:
        for c in checked:
            name = f"{secrets.token_hex(16)}.{c.ext}"
            tmp = folder / (name + ".part")
            with open(tmp, "xb") as fh:
                fh.write(c.data)
            os.replace(tmp, folder / name)
            names.append(name)
        yield names
    except BaseException:
        for name in names:
            for p in (folder / name, folder / (name + ".part")):
                p.unlink(missing_ok=True)
        raise


def link(conn: Connection, case_id: int, event_id: int, checked: list[Checked], names: list[str],
         uploaded_by: str, at: datetime | None = None) -> list[int]:
    """Insert one case_photos row per written file, in the caller's transaction; returns their ids."""
    at = at or now_cst()
    ids = []
    for c, name in zip(checked, names, strict=True):
        r = conn.execute(photos.insert().values(
            case_id=case_id, event_id=event_id, stored_name=name, original_name=c.original_name, mime=c.mime,
            bytes=len(c.data), width=c.width, height=c.height, sha256=c.sha256, uploaded_by=uploaded_by[:64],
            uploaded_at=at))
        ids.append(r.inserted_primary_key[0])
    return ids


def for_case(conn: Connection, case_id: int) -> dict[int, list[dict]]:
    """event id -> its photos (id, original name, mime, size), for a case's history."""
    out: dict[int, list[dict]] = {}
    q = (select(photos.c.id, photos.c.event_id, photos.c.original_name, photos.c.mime, photos.c.bytes,
                photos.c.width, photos.c.height)
         .where(photos.c.case_id == case_id).order_by(photos.c.id))
    for r in conn.execute(q).mappings():
        out.setdefault(r["event_id"], []).append(dict(r))
    return out


def readable(conn: Connection, photo_id, scope, folder: Path | None = None) -> tuple[Path, str] | None:
    """(file path, mime) of a photo whose case the scope permits; None when it does not exist, is out of
    scope, or its file is gone (the caller answers 404 in every case, so existence is not revealed)."""
    try:
        pid = int(photo_id)
    except (TypeError, ValueError):
        return None
    c = Case.__table__.c
    row = conn.execute(select(photos.c.stored_name, photos.c.mime, c.grid_code, c.department_code)
                       .join(Case.__table__, c.id == photos.c.case_id).where(photos.c.id == pid)).first()
    if row is None or not scope.permits(row.grid_code, row.department_code):
        return None
    folder = Path(folder) if folder is not None else directory()
    path = folder / row.stored_name
    if not path.is_file() or path.resolve().parent != folder.resolve():
        return None
    return path, row.mime


__all__ = ["PhotoError", "Checked", "check", "check_all", "decode_data_url", "written", "link", "for_case",
           "readable", "directory", "max_bytes", "max_count"]
