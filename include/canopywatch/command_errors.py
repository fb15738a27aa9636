"""How a command module's verbs fail: one line on stderr, never a traceback.

``run_verb`` calls a verb's handler; the errors it names as bad input print
``canopywatch: <message>`` and give exit 2, an unreachable PostgreSQL (or another OS-level
failure: a refused socket, an unreadable file) prints its first line and gives exit 1
(``canopywatch.cli`` folds that into 2 as well).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_verb(
    handler: Callable[[Any, Any], int],
    args: Any,
    settings: Any,
    *,
    usage_errors: tuple[type[BaseException], ...] = (ValueError,),
) -> int:
    import psycopg

    try:
        return int(handler(args, settings))
    except usage_errors as exc:
        print(f"canopywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (psycopg.OperationalError, OSError) as exc:
        print(f"canopywatch: {first_line(exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
