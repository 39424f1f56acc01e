"""The page's whole state as a URL: path = the area drilled into, query = layers, metric, basemap, language,
time range and every filter. One parse and one build, used by the layout (first render), the sync callback
(controls <-> URL), breadcrumbs and the export link, so a copied link always reopens the same view.

Paths: `/` the city, `/district/<adcode>`, `/street/<9-digit code>`; query `grid=<code>` marks a selected
grid inside a street. Time range: `range=today|7d|30d` (calendar days ending today, so a link means the
same thing tomorrow: "the last 7 days") or `range=custom&start=...&end=...` (a fixed period). A bad value
never breaks the page: it is dropped, the default is used and `problems` says what was ignored.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode

from data import codes
from layers.filters import Filters, now_cst

LAYERS = ("boundaries", "grids", "cases", "berths", "setbacks")
DEFAULT_LAYERS = ("boundaries", "grids", "cases")
METRICS = ("open", "overdue", "period", "close_rate", "ontime_rate")
RANGES = ("today", "7d", "30d", "custom")
DEFAULT_RANGE = "30d"
LIST_KEYS = ("sources", "classes", "majors", "statuses", "departments")
# Berth and setback choices style those layers (hideout); they are not case filters.
EXTRA_KEYS = {"btype": ("on_street", "off_street"), "bstate": ("free", "occupied", "out_of_service"),
              "smode": ("self", "entrusted", "joint"), "suse": ("parking", "green", "seating", "passage", "display")}
_PATH = re.compile(r"^/(?:(district|street)/([0-9]+)/?)?$")


def default_state(lang="zh", base="offline") -> dict:
    return {"path": "/", "layers": list(DEFAULT_LAYERS), "metric": "open", "base": base, "lang": lang,
            "range": DEFAULT_RANGE, "start": None, "end": None, "grid": None,
            **{k: [] for k in LIST_KEYS}, "overdue_only": False, **{k: [] for k in EXTRA_KEYS}}


def parse(pathname: str | None, search: str | None, basemaps=("offline",), known_area=None) -> tuple[dict, list[str]]:
    """(state, problems). known_area(code) -> bool tells whether an area code exists in the store."""
    problems: list[str] = []
    q = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    one = lambda k: (q.get(k) or [None])[-1]  # noqa: E731
    s = default_state()
    layers = one("layers")
    if layers is not None:
        s["layers"] = [x for x in layers.split(",") if x in LAYERS]
    if one("metric") in METRICS:
        s["metric"] = one("metric")
    elif one("metric") is not None:
        problems.append(f"metric={one('metric')}")
    if one("base") in basemaps:
        s["base"] = one("base")
    s["lang"] = "en" if one("lang") == "en" else "zh"
    # The area: the path, or district=/street= in the query (hand-written links), checked against the store.
    m = _PATH.match(pathname or "/")
    level, code = (m.group(1), m.group(2)) if m and m.group(1) else (None, None)
    if m is None:
        problems.append(f"path {pathname}")
    if level is None and (one("street") or one("district")):
        level, code = ("street", one("street")) if one("street") else ("district", one("district"))
    if level:
        try:
            code = codes.validate(code, level)
            if known_area is not None and not known_area(code):
                raise codes.CodeError(f"unknown {level} {code}")
            s["path"] = f"/{level}/{code}"
        except codes.CodeError as exc:
            problems.append(f"area:{code}:{exc}")
    g = one("grid")
    if g:
        if s["path"].startswith("/street/") and re.fullmatch(r"[0-9]{15}", g) and g.startswith(s["path"][8:]):
            s["grid"] = g
        else:
            problems.append(f"grid={g}")
    # Time range and case filters: validated by Filters itself, one key at a time so one bad value only
    # drops that value.
    rng = one("range")
    if rng is None and (one("start") or one("end")):
        rng = "custom"
    if rng in RANGES:
        s["range"] = rng
    elif rng is not None:
        problems.append(f"range={rng}")
    if s["range"] == "custom":
        try:
            f = Filters.from_query({k: one(k) for k in ("start", "end") if one(k)})
            s["start"], s["end"] = _fmt(f.start), _fmt(f.end)
        except ValueError as exc:
            problems.append(str(exc))
            s["range"] = DEFAULT_RANGE
    for key in LIST_KEYS:
        raw = one(key)
        if not raw:
            continue
        kept = []
        for v in dict.fromkeys(x.strip() for x in raw.split(",") if x.strip()):
            try:
                Filters(**{key: (v,)})
                kept.append(v)
            except ValueError as exc:
                problems.append(str(exc))
        s[key] = kept
    ov = one("overdue_only")
    if ov is not None:
        if ov.lower() in ("1", "true"):
            s["overdue_only"] = True
        elif ov.lower() not in ("0", "false", ""):
            problems.append(f"overdue_only={ov}")
    for key, allowed in EXTRA_KEYS.items():
        raw = one(key)
        if raw:
            vals = [v for v in raw.split(",") if v]
            bad = [v for v in vals if v not in allowed]
            if bad:
                problems.append(f"{key}={','.join(bad)}")
            s[key] = [v for v in allowed if v in vals]
    return s, problems


def query(s: dict) -> str:
    """The canonical query string of a state ('?...'): parse(path, query(s)) gives s back."""
    q = {"layers": ",".join(s["layers"]), "metric": s["metric"], "base": s["base"], "lang": s["lang"],
         "range": s["range"]}
    if s["range"] == "custom":
        q["start"], q["end"] = s["start"], s["end"]
    if s.get("grid"):
        q["grid"] = s["grid"]
    for key in LIST_KEYS:
        if s.get(key):
            q[key] = ",".join(s[key])
    if s.get("overdue_only"):
        q["overdue_only"] = "1"
    for key in EXTRA_KEYS:
        if s.get(key):
            q[key] = ",".join(s[key])
    return "?" + urlencode(q, safe=",:")


def href(s: dict) -> str:
    return s["path"] + query(s)


def area(s: dict) -> tuple[str | None, str | None]:
    """(district, street) of the state's path."""
    p = s.get("path") or "/"
    if p.startswith("/street/"):
        return p[8:14], p[8:]
    if p.startswith("/district/"):
        return p[10:], None
    return None, None


def period(s: dict, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the state's time range. Presets are whole calendar days ending with today; their end
    is the next full minute, so cached results stay valid for a minute and "closed" means closed by now."""
    if s.get("range") == "custom" and s.get("start") and s.get("end"):
        f = Filters.from_query({"start": s["start"], "end": s["end"]})
        return f.start, f.end
    now = now or now_cst()
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = {"today": 1, "7d": 7, "30d": 30}.get(s.get("range"), 30)
    return midnight - timedelta(days=days - 1), end


def filters(s: dict | None, now: datetime | None = None) -> Filters:
    """The one Filters every panel uses for this state, with the signed-in user's access scope (set here,
    on the server, from the session: never from the state the browser sends)."""
    from dashboard.auth import request_scope
    if not s:
        return Filters(scope=request_scope())
    start, end = period(s, now)
    district, street = area(s)
    return Filters(start=start, end=end, district=district, street=street,
                   **{k: tuple(s.get(k) or ()) for k in LIST_KEYS}, overdue_only=bool(s.get("overdue_only")),
                   scope=request_scope())


def with_area(s: dict, level: str | None, code: str | None) -> dict:
    new = dict(s, grid=None)
    new["path"] = "/" if not level else f"/{level}/{code}"
    return new


def _fmt(d: datetime) -> str:
    return d.strftime("%Y-%m-%d") if d.time() == datetime.min.time() else d.isoformat(timespec="minutes")


__all__ = ["parse", "query", "href", "filters", "period", "area", "default_state", "with_area", "LAYERS",
           "DEFAULT_LAYERS", "METRICS", "RANGES", "LIST_KEYS", "EXTRA_KEYS"]
