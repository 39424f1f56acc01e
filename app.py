"""城管一张图: entry point for the dashboard and its maintenance commands.

    python app.py                      serve the dashboard (seeds demo data on first start)
    python app.py seed --scale demo    fill the store with deterministic demo data
    python app.py import grids FILE    import a layer from GeoJSON / GeoPackage / Shapefile / CSV
    python app.py migrate              bring the store's schema up to date
    python app.py users add NAME --role ROLE   add a user (password from standard input)
    python app.py backup FILE          a consistent copy of the store (SQLite or PostgreSQL)
    python app.py restore FILE --yes   replace the store with a checked backup
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


def cmd_tokens(args) -> int:
    from data import tokens
    engine = _engine()
    try:
        with engine.begin() as conn:
            if args.tokens_cmd == "add":
                token = tokens.add(conn, args.name, args.scope)
            elif args.tokens_cmd == "revoke":
                tokens.revoke(conn, args.name)
            else:
                rows = tokens.listing(conn)
    except tokens.TokenError as exc:
        print(f"tokens: {exc}", file=sys.stderr)
        return 2
    if args.tokens_cmd == "add":
        print(f"token {args.name!r} (scope {args.scope}) created; it is shown once, only its hash is stored:")
        print(token)
    elif args.tokens_cmd == "revoke":
        print(f"token {args.name!r} revoked")
    else:
        print(f"{'name':<24} {'scope':<8} {'created':<19}  {'last used':<19}  revoked")
        for r in rows:
            f = lambda d: d.strftime("%Y-%m-%d %H:%M:%S") if d else "-"  # noqa: E731
            print(f"{r['name']:<24} {r['scope']:<8} {f(r['created_at']):<19}  {f(r['last_used_at']):<19}  "
                  f"{f(r['revoked_at'])}")
    return 0


def _read_password() -> str:
    """The password from standard input: typed twice at a terminal, else the first line of a pipe."""
    if sys.stdin.isatty():
        import getpass
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users(args) -> int:
    from data import users
    engine = _engine()
    try:
        if args.users_cmd == "add":
            password = _read_password()
            users.check_password(password)
        with engine.begin() as conn:
            if args.users_cmd == "add":
                user = users.add(conn, args.name, password, args.role, districts=args.district or (),
                                 department=args.department, display_name=args.display_name)
            elif args.users_cmd == "disable":
                users.disable(conn, args.name)
            else:
                rows = users.listing(conn)
    except ValueError as exc:  # UserError, or the two typed passwords differ
        print(f"users: {exc}", file=sys.stderr)
        return 2
    if args.users_cmd == "add":
        print(f"user {user.name!r} added: role {user.role}, sees {_scope_text(user.scope)}")
    elif args.users_cmd == "disable":
        print(f"user {args.name!r} disabled: their logins and open sessions are refused from now on")
    else:
        f = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else "-"  # noqa: E731
        print(f"{'name':<20} {'role':<10} {'scope':<24} {'last login':<16}  state")
        for r in rows:
            scope = r["department_code"] or ",".join(r["districts"]) or "city"
            state = "disabled" if r["disabled_at"] else ("locked" if r["locked_until"] else "active")
            print(f"{r['name']:<20} {r['role']:<10} {scope:<24} {f(r['last_login_at']):<16}  {state}")
    return 0


def _scope_text(scope) -> str:
    if scope.all:
        return "the whole city"
    parts = ([f"districts {', '.join(scope.districts)}"] if scope.districts else []) + \
        ([f"department {', '.join(scope.departments)}"] if scope.departments else [])
    return " and ".join(parts) or "nothing"


def cmd_simulate(args) -> int:
    from data.simulate import SimulationError, run
    try:
        stats = run(args.url, args.token, rate=args.rate, duration=args.duration, seed=args.seed,
                    database_url=args.database_url, progress=print)
    except SimulationError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    print(stats.summary())
    return 0 if stats.errors == 0 else 1


def cmd_backup(args) -> int:
    from data.store import make_engine
    from data.store.backup import BackupError, backup
    try:
        info = backup(make_engine(), args.file)
    except BackupError as exc:
        print(f"backup failed, no backup file was written: {exc}", file=sys.stderr)
        return 2
    print(f"backup written: {info.summary()}")
    return 0


def cmd_restore(args) -> int:
    from data.store import make_engine
    from data.store.backup import BackupError, restore
    from data.store.engine import redacted
    engine = make_engine()
    if not args.yes:
        print(f"restore replaces everything in {redacted(engine)} with {args.file}; "
              f"run again with --yes to do it", file=sys.stderr)
        return 1
    try:
        info = restore(engine, args.file)
    except BackupError as exc:
        print(f"restore failed, the store was not changed: {exc}", file=sys.stderr)
        return 2
    print(f"restored: {info.summary()}")
    _engine()  # bring an older backup's schema up to date
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

    s = sub.add_parser("tokens", help="API tokens: add (prints the token on its last line), list, revoke")
    tsub = s.add_subparsers(dest="tokens_cmd", required=True, metavar="ACTION")
    a = tsub.add_parser("add", help="create a token; only its SHA-256 is stored")
    a.add_argument("name")
    a.add_argument("--scope", choices=["report", "read", "operate", "wall"], required=True,
                   help="report: create cases; read: read cases; operate: also move them through the workflow "
                        "(a trusted integration); wall: the kiosk screens only")
    tsub.add_parser("list", help="list tokens (never the tokens themselves)")
    a = tsub.add_parser("revoke", help="revoke a token by name")
    a.add_argument("name")
    s.set_defaults(func=cmd_tokens)

    s = sub.add_parser("users", help="people who log in: add (password from standard input), list, disable")
    usub = s.add_subparsers(dest="users_cmd", required=True, metavar="ACTION")
    a = usub.add_parser("add", help="create a user; the password is read from standard input")
    a.add_argument("name")
    a.add_argument("--role", choices=["admin", "supervisor", "liaison", "viewer"], required=True)
    a.add_argument("--district", action="append", metavar="ADCODE",
                   help="limit a supervisor or viewer to this district (repeatable; none: the whole city)")
    a.add_argument("--department", metavar="CODE", help="the department of a liaison")
    a.add_argument("--display-name", default=None, help="the name shown in the interface")
    usub.add_parser("list", help="list users with role, scope and state (never passwords)")
    a = usub.add_parser("disable", help="refuse a user's logins and sessions from now on")
    a.add_argument("name")
    s.set_defaults(func=cmd_users)

    s = sub.add_parser("backup", help="write a consistent copy of the store to FILE (safe while serving)")
    s.add_argument("file")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("restore", help="replace the store with a checked backup FILE (stop the dashboard first)")
    s.add_argument("file")
    s.add_argument("--yes", action="store_true", help="confirm that the store's contents are replaced")
    s.set_defaults(func=cmd_restore)

    s = sub.add_parser("simulate", help="report and move realistic cases through the real HTTP API")
    s.add_argument("--rate", type=float, default=1.0, help="new cases per second")
    s.add_argument("--url", default="http://127.0.0.1:8050", help="the dashboard server to report into")
    s.add_argument("--token", required=True, help="an API token of scope operate (it reports and moves cases)")
    s.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    s.add_argument("--seed", type=int, default=None, help="random seed")
    s.add_argument("--database-url", default=None,
                   help="store to read grids from (default DATABASE_URL); only read, never written")
    s.set_defaults(func=cmd_simulate)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
