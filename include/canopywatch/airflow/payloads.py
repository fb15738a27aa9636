"""The typed hand-offs between DAG tasks, serialised to JSON in XCom.

Each task returns ``payload.to_json()`` and the next one reads it back with
``Payload.from_json``: the values in XCom are readable JSON text (no Airflow
deserialisation allow-list to configure), and reading one validates it (pydantic over
the dataclasses, so a ``BBox`` or ``Window`` is checked again on the way in). XCom
carries ids, keys and small request records, never rasters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import TypeAdapter

from canopywatch.download import Aoi, Window
from canopywatch.geo import RequestTile
from canopywatch.messages import DownloadRequest

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


class Payload:
    """JSON in and out of XCom for the dataclasses below."""

    def to_json(self) -> str:
        return _adapter(type(self)).dump_json(self).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        value: Self = _adapter(cls).validate_json(text)
        return value


# ------------------------------------------------------------------ deforestation_monitor
@dataclass(frozen=True)
class AreaJob(Payload):
    """One area of a run: where, when, which evalscript, up to which cloud cover."""

    aoi: Aoi
    window: Window
    function: str
    max_cloud: float


@dataclass(frozen=True)
class TileJob(Payload):
    """One Process API request tile of an area: the unit that is searched (mapped)."""

    area: AreaJob
    tile: RequestTile

    @property
    def label(self) -> str:
        """``area/r0c0``: the map index shown in the UI."""
        return f"{self.area.aoi.aoi_id}/{self.tile.tile_id}"


@dataclass(frozen=True)
class TileSearch(Payload):
    """The DownloadRequests one tile's catalog search planned, as their Kafka JSON."""

    label: str
    requests: tuple[str, ...] = ()

    def download_requests(self) -> list[DownloadRequest]:
        return [DownloadRequest.from_json(r) for r in self.requests]

    def producer_kwargs(self) -> dict[str, str]:
        """``producer_function_kwargs`` of ``publish_requests`` (the label names the map index)."""
        return {"label": self.label, "search": self.to_json()}


@dataclass(frozen=True)
class StoredScenes(Payload):
    """What ``summarize`` found in the object store: counts and keys."""

    planned: int
    stored: int
    bytes: int
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class LakeVersions(Payload):
    """The Delta version of each lake table before the run wrote to it."""

    versions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSync(Payload):
    version: int | None
    upserted: int
    deleted: int
    mode: str


@dataclass(frozen=True)
class CatalogSync(Payload):
    """Delta -> PostGIS: per table, the version now reflected and the rows changed."""

    tables: dict[str, TableSync] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportedReview(Payload):
    """The run's review GeoPackage: local path, object URI, feature counts."""

    path: str
    uri: str
    scenes: int
    alerts: int
    versions: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------ deforestation_detect_weekly
@dataclass(frozen=True)
class DetectionOptions(Payload):
    """The detector, its periods and the user's layers, from the weekly DAG's params (empty:
    the defaults). A layer is ``s3://bucket/key`` or a path the workers can read."""

    method: str | None = None
    history_start: str | None = None
    monitor_start: str | None = None
    forest_mask: str | None = None
    plantations: str | None = None


@dataclass(frozen=True)
class ExportedFile(Payload):
    local: str
    uri: str


@dataclass(frozen=True)
class AreaDetection(Payload):
    """One area's weekly detection: scenes scored, alerts published, files written."""

    aoi_id: str
    scenes: int
    alerts: int = 0
    high_confidence: int = 0
    area_ha: float = 0.0
    outputs: tuple[ExportedFile, ...] = ()


@dataclass(frozen=True)
class WeeklyReport(Payload):
    areas: int
    alerts: int
    area_ha: float
    outputs: tuple[ExportedFile, ...] = ()
