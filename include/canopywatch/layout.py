"""The object-key layout of the product (docs/architecture.md, "Object keys"), built and parsed here only.

    {source}/{function}/{geohash}/{timestamp}/bbox_{minx}_{miny}_{maxx}_{maxy}/{name}

Keys are validated: a fixed alphabet per segment, no empty or ``..`` segments, no
leading slash, so a key can never escape its bucket prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from canopywatch.geo import GEOHASH_ALPHABET, BBox

SOURCES = ("sentinel_hub", "stac", "folder", "simulated")
NAMES = ("raw.tif", "cog.tif", "quicklook.png", "metadata.json")
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"

_FUNCTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_GEOHASH = re.compile(rf"^[{GEOHASH_ALPHABET}]{{1,12}}$")
_TIMESTAMP = re.compile(r"^\d{8}T\d{6}Z$")
_NUMBER = r"-?\d{1,3}\.\d{6}"
_BBOX = re.compile(rf"^bbox_({_NUMBER})_({_NUMBER})_({_NUMBER})_({_NUMBER})$")


class LayoutError(ValueError):
    """A key or key part that does not follow the layout."""


@dataclass(frozen=True)
class SceneKey:
    source: str
    function: str
    geohash: str
    acquired_at: datetime
    bbox: BBox
    name: str = "raw.tif"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise LayoutError(
                f"unknown source {self.source!r}; expected one of {', '.join(SOURCES)}"
            )
        if not _FUNCTION.match(self.function):
            raise LayoutError(f"function {self.function!r} must match {_FUNCTION.pattern}")
        if not _GEOHASH.match(self.geohash):
            raise LayoutError(f"geohash {self.geohash!r} is not a base-32 geohash")
        if self.name not in NAMES:
            raise LayoutError(f"object name {self.name!r} must be one of {', '.join(NAMES)}")
        if self.acquired_at.tzinfo is None:
            raise LayoutError("acquired_at must be timezone-aware (UTC)")

    @property
    def timestamp(self) -> str:
        return format_timestamp(self.acquired_at)

    @property
    def prefix(self) -> str:
        """The folder that holds every object of this scene (raw, cog, quicklook)."""
        return "/".join(
            (self.source, self.function, self.geohash, self.timestamp, bbox_segment(self.bbox))
        )

    @property
    def key(self) -> str:
        return f"{self.prefix}/{self.name}"

    def with_name(self, name: str) -> SceneKey:
        return SceneKey(self.source, self.function, self.geohash, self.acquired_at, self.bbox, name)


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise LayoutError("timestamps must be timezone-aware (UTC)")
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def bbox_segment(bbox: BBox) -> str:
    return "bbox_" + "_".join(f"{v:.6f}" for v in bbox.as_tuple())


def parse_key(key: str) -> SceneKey:
    """Read a key back into its parts; raises LayoutError for anything off-layout."""
    if key.startswith("/") or "\\" in key:
        raise LayoutError(f"key {key!r} must be relative and use '/' separators")
    parts = key.split("/")
    if len(parts) != 6 or any(p in {"", ".", ".."} for p in parts):
        raise LayoutError(
            f"key {key!r} does not follow "
            "{source}/{function}/{geohash}/{timestamp}/bbox_{minx}_{miny}_{maxx}_{maxy}/{name}"
        )
    source, function, ghash, stamp, bbox_part, name = parts
    if not _TIMESTAMP.match(stamp):
        raise LayoutError(f"timestamp segment {stamp!r} must look like 20240131T103021Z")
    match = _BBOX.match(bbox_part)
    if not match:
        raise LayoutError(f"bbox segment {bbox_part!r} must look like bbox_-55.100000_-10.2..")
    acquired_at = datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    bbox = BBox(*(float(v) for v in match.groups()))
    return SceneKey(source, function, ghash, acquired_at, bbox, name)
