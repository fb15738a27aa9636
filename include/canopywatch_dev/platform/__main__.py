"""``python -m canopywatch_dev.platform up|down|status|login [SERVICE ...]``.

    up      start services (all when none named) and what they need; running ones are left alone,
            one on its way out is waited for; the watchdog then restarts any that dies
    down    stop services (all when none named: the watchdog too); stopped ones stay stopped
    status  table of processes: service, state, address, pid, log file
    login   print every console's address and login: Airflow UI, MinIO console, PostGIS,
            the local CDSE endpoint, the HTTP API and its admin key

Exit codes: 0 done, 1 a service failed (the message names its log file), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from canopywatch.settings import Settings, SettingsError
from canopywatch_dev.platform import SERVICES, stack, watchdog
from canopywatch_dev.platform.process import PlatformError

COMMANDS = ("up", "down", "status", "login", "watch")  # watch: the watchdog's loop (internal)
_STATE_STYLE = {"running": "green", "stopped": "dim", "unhealthy": "red"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _parser() -> _Parser:
    parser = _Parser(
        prog="python -m canopywatch_dev.platform",
        description="Start, stop and inspect the local platform (no Docker).",
        epilog=f"services: {', '.join(SERVICES)}",
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="default: all")
    return parser


def _status_table(settings: Settings, names: list[str]) -> Table:
    table = Table(title=f"canopywatch platform ({settings.home})")
    for column in ("service", "process", "state", "address", "pid", "log file"):
        table.add_column(column)
    rows = stack.status(settings, names)
    if not names:
        rows.append(watchdog.status(settings))
    for row in rows:
        style = _STATE_STYLE.get(row.state, "")
        table.add_row(
            row.service,
            row.process,
            f"[{style}]{row.state}[/]" if style else row.state,
            row.address,
            str(row.pid or ""),
            _shorten(str(row.log_file)),
        )
    return table


def _shorten(path: str) -> str:
    cwd = str(Path.cwd())
    return path[len(cwd) + 1 :] if path.startswith(cwd + "/") else path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = [name for name in args.services if name not in SERVICES]
    if unknown:
        print(
            f"python -m canopywatch_dev.platform: unknown service {unknown[0]!r} "
            f"(choose from {', '.join(SERVICES)})",
            file=sys.stderr,
        )
        return 2
    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=160)
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=True, markup=False)],
    )
    logging.getLogger("canopywatch_dev.platform.librdkafka").setLevel(logging.CRITICAL)
    try:
        settings = Settings.from_env()
        if args.command == "up":
            stack.up(settings, args.services)
            watchdog.want(settings, stack.with_dependencies(args.services))
            watchdog.start(settings)
        elif args.command == "down":
            if not args.services:
                watchdog.stop(settings)  # first, so it does not bring anything back
            watchdog.unwant(settings, args.services or SERVICES)
            stack.down(settings, args.services)
        elif args.command == "watch":
            watchdog.run(settings)
        elif args.command == "status":
            out = Console()
            if not out.is_terminal:
                out = Console(width=200)
            out.print(_status_table(settings, args.services))
        else:
            from canopywatch_dev.platform import logins

            print(logins.text(settings))  # every console: address and login, on request
    except (PlatformError, SettingsError) as exc:
        console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
