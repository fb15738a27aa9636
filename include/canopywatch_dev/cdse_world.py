"""The areas a local CDSE endpoint serves: simulated Sentinel-2 L2A scenes and mosaics of them.

A world is a list of served areas, each one ``Simulation`` of ``simulate_area``. It answers two
questions for the emulator: which scenes exist (catalogue searches) and what a mosaic of chosen
scenes looks like on a requested grid (Process API rendering, SIMPLE mosaicking).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from shapely.geometry import Polygon

from canopywatch.geo import Grid
from canopywatch.sentinel2 import BANDS, SCL_BAND, SCL_NO_DATA
from canopywatch_dev.simulate import Acquisition, Simulation, simulate_area

LOGGER = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)
_PRODUCT_BASELINE = re.compile(r"_N(\d{2})(\d{2})_")
_RELATIVE_ORBIT = re.compile(r"_R(\d{3})_")


class WorldConfigError(ValueError):
    """A world file or area definition cannot be used."""


@dataclass(frozen=True)
class AreaSpec:
    """One served area as written in WORLD.json."""

    name: str
    bbox: tuple[float, float, float, float]
    start: date
    end: date
    seed: int = 0
    resolution: float = 10.0
    knobs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AreaSpec:
        try:
            minx, miny, maxx, maxy = (float(v) for v in raw["bbox"])
            spec = cls(
                name=str(raw["name"]),
                bbox=(minx, miny, maxx, maxy),
                start=date.fromisoformat(str(raw["start"])),
                end=date.fromisoformat(str(raw["end"])),
                seed=int(raw.get("seed", 0)),
                resolution=float(raw.get("resolution", 10.0)),
                knobs=dict(raw.get("knobs", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WorldConfigError(f"bad area definition {raw!r}: {exc}") from exc
        if minx >= maxx or miny >= maxy or spec.start > spec.end:
            raise WorldConfigError(f"area {spec.name!r} has an empty bbox or time range")
        return spec


def load_area_specs(path: Path) -> list[AreaSpec]:
    """Reads ``{"areas": [...]}`` from a WORLD.json file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        areas = document["areas"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorldConfigError(f"cannot read world file {path}: {exc}") from exc
    return [AreaSpec.from_json(area) for area in areas]


def footprint_lonlat(crs: CRS, bounds: tuple[float, float, float, float]) -> Polygon:
    """The four corners of ``bounds`` (in ``crs``) as a lon/lat polygon."""
    minx, miny, maxx, maxy = bounds
    to_lonlat = Transformer.from_crs(crs, WGS84, always_xy=True)
    corners = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]
    return Polygon([to_lonlat.transform(x, y) for x, y in corners])


class ServedArea:
    """One simulation (which caches its own rendered acquisitions) and its footprint."""

    def __init__(self, name: str, simulation: Simulation) -> None:
        self.name = name
        self.simulation = simulation
        self.grid = Grid(
            crs=simulation.crs,
            transform=simulation.transform,
            width=simulation.config.width,
            height=simulation.config.height,
        )
        self.footprint = footprint_lonlat(simulation.crs, self.grid.bounds)

    def render(self, index: int) -> dict[str, npt.NDArray[Any]]:
        return self.simulation.render(index)


@dataclass(frozen=True)
class Scene:
    """One acquisition of one served area: a catalogue item."""

    area: ServedArea
    acquisition: Acquisition

    @property
    def id(self) -> str:
        return self.acquisition.product_id

    @property
    def datetime(self) -> datetime:
        return self.acquisition.datetime

    @property
    def cloud_cover(self) -> float:
        return float(self.acquisition.cloud_cover)

    @property
    def processing_baseline(self) -> str:
        match = _PRODUCT_BASELINE.search(self.acquisition.product_id)
        return f"{match.group(1)}.{match.group(2)}" if match else "05.10"

    @property
    def relative_orbit(self) -> int | None:
        match = _RELATIVE_ORBIT.search(self.acquisition.product_id)
        return int(match.group(1)) if match else None

    @property
    def mgrs_tile(self) -> str:
        return self.acquisition.tile_id.removeprefix("T")


class World:
    """All served areas; scenes sorted by acquisition time, then id."""

    def __init__(self, areas: Sequence[ServedArea]) -> None:
        self.areas = list(areas)
        scenes = [Scene(area, acq) for area in self.areas for acq in area.simulation.acquisitions]
        self.scenes = sorted(scenes, key=lambda scene: (scene.datetime, scene.id))

    @classmethod
    def from_specs(cls, specs: Iterable[AreaSpec]) -> World:
        areas = []
        for spec in specs:
            LOGGER.info(
                "simulating served area %s over %s, %s..%s",
                spec.name,
                spec.bbox,
                spec.start,
                spec.end,
            )
            simulation = simulate_area(
                spec.bbox,
                spec.start,
                spec.end,
                seed=spec.seed,
                resolution=spec.resolution,
                **dict(spec.knobs),
            )
            areas.append(ServedArea(spec.name, simulation))
        return cls(areas)

    @classmethod
    def from_file(cls, path: Path) -> World:
        return cls.from_specs(load_area_specs(path))


@dataclass(frozen=True)
class Mosaic:
    """Raw L2A digital numbers (with the BOA offset, as stored) on a target grid.

    ``bands`` hold uint16 DN, 0 where no scene has data; ``data_mask`` is 1 where a scene
    supplied the pixel.
    """

    bands: dict[str, npt.NDArray[np.uint16]]
    data_mask: npt.NDArray[np.uint8]
    scenes: list[Scene]


def mosaic_simple(
    scenes_in_order: Sequence[Scene],
    target: Grid,
    band_names: Sequence[str],
    inside: npt.NDArray[np.bool_] | None = None,
) -> Mosaic:
    """SIMPLE mosaicking: each pixel comes from the first scene in order that has data there.

    ``inside`` (optional) limits the pixels that may receive data, e.g. a request geometry.
    """
    wanted = [name for name in band_names if name in (*BANDS, SCL_BAND)]
    shape = (target.height, target.width)
    bands = {name: np.zeros(shape, dtype=np.uint16) for name in wanted}
    filled = np.zeros(shape, dtype=bool)
    open_pixels = np.ones(shape, dtype=bool) if inside is None else inside.copy()
    used: list[Scene] = []
    target_lonlat = footprint_lonlat(target.crs, target.bounds)
    for scene in scenes_in_order:
        if not open_pixels.any():
            break
        if not scene.area.footprint.intersects(target_lonlat):
            continue
        warped, valid = _warp_scene(scene, target, wanted)
        take = valid & open_pixels
        if not take.any():
            continue
        used.append(scene)
        for name in wanted:
            bands[name][take] = warped[name][take]
        filled |= take
        open_pixels &= ~take
    return Mosaic(bands=bands, data_mask=filled.astype(np.uint8), scenes=used)


def _warp_scene(
    scene: Scene, target: Grid, band_names: Sequence[str]
) -> tuple[dict[str, npt.NDArray[np.uint16]], npt.NDArray[np.bool_]]:
    """Nearest-neighbour reprojection of one rendered scene onto ``target``."""
    rendered = scene.area.render(scene.acquisition.index)
    scl = rendered[SCL_BAND]
    # the extra last layer marks source pixels that hold data; outside the source grid it stays 0
    layers = [rendered[name].astype(np.uint16) for name in band_names]
    layers.append((scl != SCL_NO_DATA).astype(np.uint16))
    source = np.stack(layers)
    destination = np.zeros((len(layers), target.height, target.width), dtype=np.uint16)
    source_grid = scene.area.grid
    reproject(
        source=source,
        destination=destination,
        src_transform=source_grid.transform,
        src_crs=source_grid.crs,
        dst_transform=target.transform,
        dst_crs=target.crs,
        resampling=Resampling.nearest,
    )
    warped = {name: destination[i] for i, name in enumerate(band_names)}
    return warped, destination[-1] == 1
