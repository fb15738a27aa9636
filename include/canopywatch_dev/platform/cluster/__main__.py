"""``python -m canopywatch_dev.platform.cluster up|down|status [SERVICE ...]``.

    up      start the cluster profile's services (all when none named) and what they need;
            running processes are left alone, so ``up`` after a ``kill -9`` restarts only
            the dead ones
    down    stop services (all when none named); data stays under the cluster home
    status  table of processes: service, state, address, pid, log file

Home and ports: ``CANOPYWATCH_CLUSTER_HOME`` (default ``.platform/cluster``) and
``CANOPYWATCH_CLUSTER_PORT_BASE`` (default 29000). Exit codes: 0 done, 1 a service failed
(the message names its log file), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from canopywatch.settings import SettingsError
from canopywatch_dev.platform.cluster import SERVICES, stack
from canopywatch_dev.platform.cluster.profile import Profile, ProfileError
from canopywatch_dev.platform.process import PlatformError

COMMANDS = ("up", "down", "status")
_STATE_STYLE = {"running": "green", "stopped": "dim", "unhealthy": "red"}
PROG = "python -m canopywatch_dev.platform.cluster"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Start, stop and inspect the cluster profile on loopback (no Docker).",
        epilog=f"services: {', '.join(SERVICES)}",
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="default: all")
    return parser


def _table(profile: Profile, names: list[str]) -> Table:
    table = Table(title=f"canopywatch cluster profile ({profile.home})")
    for column in ("service", "process", "state", "address", "pid", "log file"):
        table.add_column(column)
    for row in stack.status(profile, names):
        style = _STATE_STYLE.get(row.state, "")
        table.add_row(
            row.service,
            row.process,
            f"[{style}]{row.state}[/]" if style else row.state,
            row.address,
            str(row.pid or ""),
            str(row.log_file),
        )
    return table


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = [name for name in args.services if name not in SERVICES]
    if unknown:
        print(f"{PROG}: unknown service {unknown[0]!r} (choose from {', '.join(SERVICES)})",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        profile = Profile.from_env()
    except ProfileError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
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
        if args.command == "up":
            stack.up(profile, args.services)
        elif args.command == "down":
            stack.down(profile, args.services)
        else:
            out = Console()
            if not out.is_terminal:
                out = Console(width=200)
            out.print(_table(profile, args.services))
    except (PlatformError, SettingsError) as exc:
        console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
