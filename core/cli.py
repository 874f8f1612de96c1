"""Administrative commands: `python -m core.cli create-admin [--username U]`.

The password is read from the environment variable ADMIN_PASSWORD or asked for
interactively (never taken from the command line, where it would land in shell history).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import datetime, timezone

from core.platform.config import load_or_exit
from core.platform.db import get_engine, unit_of_work
from core.platform.users import UserError, ensure_admin


def create_admin(args: argparse.Namespace) -> int:
    settings = load_or_exit()
    password = os.environ.get("ADMIN_PASSWORD") or ""
    if not password:
        if not sys.stdin.isatty():
            print("Fehler: ADMIN_PASSWORD ist nicht gesetzt und es gibt kein Terminal für die Eingabe.", file=sys.stderr)
            return 2
        password = getpass.getpass("Passwort für das Administrationskonto: ")
        if password != getpass.getpass("Passwort wiederholen: "):
            print("Fehler: Die Passwörter stimmen nicht überein.", file=sys.stderr)
            return 2
    try:
        with unit_of_work(get_engine(settings.DATABASE_URL)) as s:
            user, created = ensure_admin(
                s, username=args.username, password=password, display_name=args.name, now=datetime.now(timezone.utc)
            )
    except UserError as exc:
        print(f"Fehler: {exc}", file=sys.stderr)
        return 2
    print(("Konto angelegt: " if created else "Konto gibt es schon: ") + user.username)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Verwaltungsbefehle")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create-admin", help="erstes Administrationskonto anlegen")
    p.add_argument("--username", default="admin")
    p.add_argument("--name", default="Administration")
    p.set_defaults(func=create_admin)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
