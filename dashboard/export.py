"""Export the filtered cases as CSV, XLSX or GeoJSON, streamed so a million rows never sit in memory.

Routes: GET /export/cases.csv | cases.xlsx | cases.geojson ?<Filters.to_query()>&lang=zh|en
- The query is the same filter the page shows (Filters.from_query, strict): a bad or unknown parameter is a
  400 with the reason, never a silently wider export. Rows go through layers.filters.where like every
  other case query, so access scopes added there apply here too.
- Column names: `lang=zh` (default) gives Chinese headers and names, `lang=en` English ones. The CSV has
  a UTF-8 BOM so Excel opens the Chinese text correctly.
- Rows are read with a server-side cursor (stream_results + yield_per) in id order, which both databases
  stream without a sort (a file has no use for the table's on-screen order).
- XLSX cannot be streamed while it is written (it is a zip), so xlsxwriter writes it in constant_memory
  mode to a temporary file, which is then streamed and deleted.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import replace

from flask import Response, jsonify, request, stream_with_context
from sqlalchemy import select

from layers.filters import Filters, cases, now_cst, where
from layers.table import COLUMNS, DISPLAY, labels, row_dict

FORMATS = ("csv", "xlsx", "geojson")
CHUNK = 5000
EXTRA = ("lang",)
MIME = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "geojson": "application/geo+json"}


def parse(args) -> tuple[Filters, str]:
    """(Filters, lang) from the request query; ValueError with the reason on bad input."""
    lang = args.get("lang", "zh")
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    query = {k: args.getlist(k) for k in args if k not in EXTRA}
    from dashboard.auth import request_scope   # the signed-in user's scope, never from the query
    return replace(Filters.from_query(query, strict=True), scope=request_scope()), lang


def rows(engine, f: Filters, lang: str, now=None):
    """Yield the export rows (dicts in COLUMNS order) of the filtered cases, CHUNK at a time from the store."""
    now = now or now_cst()
    c = cases.c
    q = select(*[c[k] for k in DISPLAY]).where(*where(f, period="reported", now=now)).order_by(c.id)
    with engine.connect() as conn:
        names = labels(conn)
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(q)
        for part in result.partitions():
            for r in part:
                yield row_dict(r, names, lang, now)


def headers(lang: str) -> list[str]:
    i = 1 if lang == "en" else 0
    return [v[i] for v in COLUMNS.values()]


def _value(d, k, lang):
    v = d[k]
    if k == "overdue":
        return ("yes" if v else "no") if lang == "en" else ("是" if v else "否")
    return v


def csv_stream(engine, f, lang):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(headers(lang))
    yield "\ufeff" + buf.getvalue()
    buf.seek(0)
    buf.truncate()
    n = 0
    for d in rows(engine, f, lang):
        w.writerow([_value(d, k, lang) for k in COLUMNS])
        n += 1
        if n % 1000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def geojson_stream(engine, f, lang):
    yield '{"type":"FeatureCollection","features":['
    first = True
    props = [k for k in COLUMNS if k not in ("lon", "lat")]
    parts = []
    for d in rows(engine, f, lang):
        feat = {"type": "Feature", "id": d["id"], "geometry": {"type": "Point", "coordinates": [d["lon"], d["lat"]]},
                "properties": {k: d[k] for k in props}}
        parts.append(("" if first else ",") + json.dumps(feat, ensure_ascii=False))
        first = False
        if len(parts) >= 1000:
            yield "".join(parts)
            parts = []
    parts.append("]}")
    yield "".join(parts)


def xlsx_file(engine, f, lang) -> str:
    """Write the workbook to a temporary file (constant memory) and return its path."""
    import xlsxwriter
    fd, path = tempfile.mkstemp(suffix=".xlsx", prefix="cgzt-export-")
    os.close(fd)
    try:
        wb = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tempfile.gettempdir(),
                                        "strings_to_numbers": False, "strings_to_formulas": False,
                                        "strings_to_urls": False})
        ws = wb.add_worksheet("cases")
        bold = wb.add_format({"bold": True})
        ws.write_row(0, 0, headers(lang), bold)
        for i, d in enumerate(rows(engine, f, lang), start=1):
            ws.write_row(i, 0, [_value(d, k, lang) for k in COLUMNS])
        wb.close()
    except BaseException:
        os.unlink(path)
        raise
    return path


def _file_stream(path, chunk=1 << 16):
    try:
        with open(path, "rb") as fh:
            while True:
                b = fh.read(chunk)
                if not b:
                    break
                yield b
    finally:
        os.unlink(path)


def register(server, engine) -> None:
    @server.get("/export/cases.<fmt>")
    def export_cases(fmt):
        if fmt not in FORMATS:
            return jsonify({"error": f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"}), 404
        try:
            f, lang = parse(request.args)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        stamp = now_cst().strftime("%Y%m%d-%H%M")
        disp = {"Content-Disposition": f'attachment; filename="cases-{stamp}.{fmt}"', "Cache-Control": "no-store"}
        if fmt == "csv":
            return Response(stream_with_context(csv_stream(engine, f, lang)), mimetype=MIME[fmt], headers=disp)
        if fmt == "geojson":
            return Response(stream_with_context(geojson_stream(engine, f, lang)), mimetype=MIME[fmt], headers=disp)
        path = xlsx_file(engine, f, lang)
        disp["Content-Length"] = str(os.path.getsize(path))
        return Response(_file_stream(path), mimetype=MIME[fmt], headers=disp)


__all__ = ["register", "parse", "rows", "headers", "FORMATS"]
