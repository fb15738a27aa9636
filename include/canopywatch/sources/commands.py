"""``canopywatch stats --bbox ... --start ... --end ...``: mean NDVI per interval of an area
from the CDSE Statistical API (``canopywatch.sources.statistics``), no imagery downloaded.

    canopywatch stats --bbox -55.40,-7.10,-55.35,-7.05 --start 2024-01-01 --end 2024-06-30
                      [--interval-days 5] [--max-cloud 100] [--resolution 10]
                      [--format table|csv|json] [--output FILE]

Bad input (bbox, dates, interval, an area too large for the resolution) prints one line
and exits 2; so does a service that cannot be reached or refuses the credentials.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from canopywatch.output import Column, add_listing_options, emit, span_of, with_examples
from canopywatch.settings import Settings

EXIT_USAGE = 2
COLUMNS = (
    Column("start", "from", "date"),
    Column("end", "to", "date"),
    Column("mean_ndvi", "mean NDVI", "number", digits=3),
    Column("min_ndvi", "min", "number", digits=3),
    Column("max_ndvi", "max", "number", digits=3),
    Column("st_dev", "st. dev.", "number", digits=3),
    Column("clear_share", "clear", "number", digits=2),
    Column("clear_px", in_table=False),
    Column("pixels", in_table=False),
)


def register(subparsers: Any) -> None:
    stats = subparsers.add_parser(
        "stats",
        **with_examples(
            "mean NDVI per interval of an area (CDSE Statistical API; no imagery downloaded)",
            "canopywatch stats --bbox -55.40,-7.10,-55.35,-7.05 --start 2024-01-01 --end 2024-06-30",
            "canopywatch stats --bbox -55.40,-7.10,-55.35,-7.05 --start 2024-01-01 "
            "--end 2024-12-31 --interval-days 10 --max-cloud 60 --format csv",
        ),
    )
    stats.add_argument("--bbox", required=True, help="min_lon,min_lat,max_lon,max_lat")
    stats.add_argument("--start", required=True, help="first day, e.g. 2024-01-01")
    stats.add_argument("--end", required=True, help="last day (inclusive), e.g. 2024-06-30")
    stats.add_argument(
        "--interval-days", type=int, default=5, help="days per interval (default 5: the revisit)"
    )
    stats.add_argument(
        "--max-cloud", type=float, default=100.0, help="scene cloud cover at most (%%, default 100)"
    )
    stats.add_argument(
        "--resolution", type=float, default=10.0, help="metres per pixel (default 10)"
    )
    add_listing_options(stats, formats=("table", "csv", "json"), default_name="stats")
    stats.set_defaults(stats_handler=_stats)


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    handler = getattr(args, "stats_handler", None)
    if handler is None:
        return None
    result: int = handler(args, settings)
    return result


def _days(first: str, last: str) -> tuple[datetime, datetime]:
    """``--start``/``--end`` days as the UTC range [start 00:00, the day after end 00:00)."""
    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        raise ValueError(
            f"--start {first!r} / --end {last!r}: {exc} (give e.g. 2024-01-31)"
        ) from None
    if end < start:
        raise ValueError(f"--end {last} is before --start {first}")
    midnight = time(0, tzinfo=UTC)
    return datetime.combine(start, midnight), datetime.combine(end + timedelta(days=1), midnight)


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.geo import BBoxError, parse_bbox
    from canopywatch.sources.copernicus import CdseEndpoint, CredentialsError, sh_config
    from canopywatch.sources.statistics import ndvi_series, statistical_request

    try:
        bbox = parse_bbox(args.bbox)
        start, end = _days(args.start, args.end)
        options = {
            "interval_days": args.interval_days,
            "max_cloud": args.max_cloud,
            "resolution_m": args.resolution,
        }
        config = sh_config(
            CdseEndpoint.from_settings(settings), max_retries=settings.sh_max_retries
        )
        statistical_request(config, bbox, start, end, **options)  # checks the input
    except (BBoxError, CredentialsError, ValueError) as exc:
        print(f"canopywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        series = ndvi_series(config, bbox, start, end, **options)
    except Exception as exc:  # the service: unreachable, refused, or an error answer
        # sentinelhub spreads its reason over lines ("Failed to download from:", the URL,
        # "with ConnectionError: ..."): one line of it
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        print(f"canopywatch: Statistical API at {settings.sh_base_url}: {text}", file=sys.stderr)
        return EXIT_USAGE
    emit(
        [s.as_row() for s in series],
        COLUMNS,
        args,
        title=f"NDVI of {bbox.minx},{bbox.miny},{bbox.maxx},{bbox.maxy} (clear pixels)",
        noun="intervals",
        totals=(span_of("start"),),
        geometry=lambda row: None,
    )
    return 0
