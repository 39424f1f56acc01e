"""城管一张图: entry point for the dashboard and its maintenance commands.

    python app.py                      serve the dashboard (seeds demo data on first start)
    python app.py seed --scale demo    fill the store with deterministic demo data
    python app.py import grids FILE    import a layer from GeoJSON / GeoPackage / Shapefile / CSV
    python app.py migrate              bring the store's schema up to date
"""
import argparse
import sys


def _engine():
    """The store, migrated, with the real district outlines and reference tables every store starts with."""
    from data.boundaries import ensure_districts
    from data.store import make_engine
    from data.store.migrate import upgrade
    engine = make_engine()
    upgrade(engine)
    with engine.begin() as conn:
        ensure_districts(conn)
    return engine


def cmd_serve(args) -> int:
    from dashboard.server import serve
    return serve(_engine(), host=args.host, port=args.port, seed_if_empty=not args.no_seed, debug=args.debug)


def cmd_seed(args) -> int:
    from data.demo.seed import StoreNotEmpty, seed
    try:
        report = seed(_engine(), scale=args.scale, seed=args.seed, replace=args.replace, progress=print)
    except StoreNotEmpty as exc:
        print(f"seed refused: {exc}", file=sys.stderr)
        return 1
    print(report.table())
    return 0


def cmd_import(args) -> int:
    from data.importers import ImportRejected, import_file
    try:
        result = import_file(_engine(), args.layer, args.file, crs=args.crs, replace=args.replace)
    except ImportRejected as exc:
        print(f"import rejected, nothing was written: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def cmd_migrate(args) -> int:
    from data.store.migrate import current
    engine = _engine()
    print(f"schema at revision {current(engine)}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python app.py", description="城管一张图 — city-management command map")
    p.set_defaults(func=cmd_serve, host="127.0.0.1", port=8050, no_seed=False, debug=False)
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    s = sub.add_parser("serve", help="serve the dashboard (the default command)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8050)
    s.add_argument("--no-seed", action="store_true", help="do not seed demo data into an empty store")
    s.add_argument("--debug", action="store_true", help="Dash debug mode (development only)")
    s.set_defaults(func=cmd_serve)
    for flag, kw in (("--host", {"default": "127.0.0.1"}), ("--port", {"type": int, "default": 8050})):
        p.add_argument(flag, **kw)

    s = sub.add_parser("seed", help="fill the store with deterministic demo data")
    s.add_argument("--scale", choices=["test", "demo", "full"], default="demo",
                   help="test: a small fixture; demo: recent weeks (first start); full: 12 months, 1M cases")
    s.add_argument("--seed", type=int, default=20261122, help="random seed (same seed, same data)")
    s.add_argument("--replace", action="store_true", help="empty the store's data tables first")
    s.set_defaults(func=cmd_seed)

    s = sub.add_parser("import", help="import grids, berths, setbacks or cases from a file (one transaction)")
    s.add_argument("layer", choices=["grids", "berths", "setbacks", "cases"])
    s.add_argument("file")
    s.add_argument("--crs", default=None,
                   help="source CRS when the file does not say: EPSG:4326, EPSG:4490, EPSG:4549, gcj02 ...")
    s.add_argument("--replace", action="store_true", help="replace the layer's rows instead of adding")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("migrate", help="bring the store's schema to the newest revision")
    s.set_defaults(func=cmd_migrate)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
