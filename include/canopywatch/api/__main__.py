"""``python -m canopywatch.api [--host H] [--port P]``: serve the API with uvicorn.

Settings from ``CANOPYWATCH_*`` variables (``CANOPYWATCH_API_PORT``, default 18600).
Exit codes: 0 stopped, 2 bad settings or usage.
"""

from __future__ import annotations

import argparse
import sys

from canopywatch.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canopywatch.api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: CANOPYWATCH_API_PORT")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"canopywatch.api: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from canopywatch.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port or settings.api_port,
        log_level="info",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
