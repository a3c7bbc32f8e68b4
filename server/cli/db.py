"""`latent-studio db check` / `db recover`: the way out when the server's database is damaged.

`serve` refuses to start on a damaged database and names these commands. `check` runs
SQLite's full integrity check; `recover` (with the server stopped) keeps the damaged file
beside the new one and rebuilds the database from what can still be read and from the data
folder (server.db_recovery).
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR_HELP = "the server's data folder (default: $LATENT_STUDIO_DATA, else ~/.latent-studio)"


def register(subparsers) -> None:
    p = subparsers.add_parser("db", help="check or recover the server's database")
    sub = p.add_subparsers(dest="db_command", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("check", help="run SQLite's integrity check on the server's database",
                       description="Exit code 0 when the database is healthy, 1 when it is damaged.")
    c.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    c.set_defaults(func=run_check)
    r = sub.add_parser("recover", help="rebuild a damaged database (the server must be stopped)",
                       description="Moves the database aside as <name>.damaged-<time>, creates a fresh one, "
                                   "copies every row that can still be read and adds the datasets and training "
                                   "runs found in the data folder. Unfinished jobs come back as failed: resume them.")
    r.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    r.set_defaults(func=run_recover)


def _config(args):
    from server.config import ServerConfig, default_data_dir

    return ServerConfig(data_dir=Path(args.data_dir).expanduser() if args.data_dir else default_data_dir())


def run_check(args) -> int:
    from server.db_recovery import check_database

    config = _config(args)
    if not config.db_path.exists():
        print(f"no database at {config.db_path} (the server creates one when it starts)")
        return 0
    problems = check_database(config)
    if not problems:
        print(f"ok: {config.db_path}")
        return 0
    print(f"damaged: {config.db_path}")
    for problem in problems:
        print(f"  {problem}")
    print(f"run 'latent-studio db recover --data-dir {config.data_dir}' with the server stopped")
    return 1


def run_recover(args) -> int:
    from server.db_recovery import recover_database

    config = _config(args)
    report = recover_database(config)  # RecoveryRefused (a ValueError) prints as one line
    if report.damaged_copy is not None:
        print(f"the old database is kept as {report.damaged_copy}")
    print(f"new database: {config.db_path}")
    for table in report.salvaged:
        rebuilt = report.rebuilt.get(table)
        extra = f", {rebuilt} rebuilt from the data folder" if rebuilt is not None else ""
        stopped = f" (reading stopped: {report.unreadable[table]})" if table in report.unreadable else ""
        print(f"  {table}: {report.salvaged[table]} row(s) recovered{extra}{stopped}")
    return 0
