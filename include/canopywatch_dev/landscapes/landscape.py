"""A generated scene: its observations, its truth, and its L2A-like GeoTIFFs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.crs
from affine import Affine

from canopywatch.dates import date_from_days, days_since_epoch
from canopywatch.detect.evaluate import ReferenceData, ReferenceEvent
from canopywatch.detect.observations import ObservationStack
from canopywatch_dev.landscapes.config import LandscapeConfig, Settings
from canopywatch_dev.landscapes.ground import EventInfo, Ground, build_ground
from canopywatch_dev.landscapes.sky import RELATIVE_ORBITS, Sky, observe, schedule
from canopywatch_dev.landscapes.spectra import BANDS, LANDCOVER_NAMES, NATURAL_FOREST

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
SCENE_BANDS: tuple[str, ...] = (*BANDS, "SCL")
DN_OFFSET = 1000  # DN = reflectance * 10000 + 1000 (BOA_ADD_OFFSET = -1000)
QUANTIFICATION = 10000


@dataclass
class Landscape:
    config: LandscapeConfig
    settings: Settings
    days: I64  # (T,) days since 1970-01-01
    transform: Affine
    crs: rasterio.crs.CRS
    shape: tuple[int, int]
    ground: Ground
    sky: Sky

    # ----------------------------------------------------------------- observations

    @property
    def dates(self) -> list[dt.date]:
        return [date_from_days(int(d)) for d in self.days]

    @property
    def reflectance(self) -> dict[str, F32]:
        """Observed reflectance (T, H, W) per band, clouds included (what the files hold)."""
        return {band: self.sky.reflectance[b] for b, band in enumerate(BANDS)}

    @property
    def scl(self) -> npt.NDArray[np.uint8]:
        return self.sky.scl

    @property
    def clear(self) -> npt.NDArray[np.bool_]:
        """The flagged mask inverted: SCL not 3/8/9/10. Unflagged haze and edges are clear."""
        return self.sky.clear

    @property
    def orbit(self) -> I64:
        return self.sky.orbit

    @property
    def satellite(self) -> tuple[str, ...]:
        return tuple("S2A" if int(o) == 0 else "S2B" for o in self.sky.orbit)

    @property
    def events(self) -> tuple[EventInfo, ...]:
        """Clearings (number >= 1) and fires never followed by clearing (number 0)."""
        return tuple(self.ground.events)

    def surface(self, days: npt.ArrayLike | None = None) -> dict[str, F32]:
        """Noise-free, cloud-free, registered surface reflectance (T, H, W) per band."""
        when = self.days if days is None else np.asarray(days, dtype=np.int64)
        values = self.ground.surface(when)
        return {band: values[b] for b, band in enumerate(BANDS)}

    def stack(self) -> ObservationStack:
        """Reflectance with NaN where flagged; ``clear`` is the flagged mask (no dilation)."""
        clear = self.clear
        bands = {
            band: np.where(clear, self.sky.reflectance[b], np.nan).astype(np.float32)
            for b, band in enumerate(BANDS)
        }
        return ObservationStack(
            days=self.days.copy(),
            bands=bands,
            clear=clear.copy(),
            transform=self.transform,
            crs=self.crs,
            meta={
                "source": "canopywatch_dev.landscapes",
                "kind": self.config.kind,
                "seed": self.config.seed,
                "orbit": self.sky.orbit.tolist(),
            },
        )

    # ----------------------------------------------------------------- truth

    def reference(self) -> ReferenceData:
        g = self.ground
        events = tuple(
            ReferenceEvent(number=e.number, start_day=e.start_day, kind=e.kind)
            for e in g.events
            if e.number > 0
        )
        natural = np.isin(g.landcover, NATURAL_FOREST)
        stable = natural & (g.clearing_day < 0) & ~g.other_change
        return ReferenceData(
            clearing_day=g.clearing_day.copy(),
            event_raster=g.event_raster.copy(),
            events=events,
            transform=self.transform,
            stable_forest=stable,
            other_change=g.other_change.copy(),
            other_change_day=g.plantation_cut_day.copy(),
            landcover=g.landcover.copy(),
            landcover_names=dict(LANDCOVER_NAMES),
        )

    # ----------------------------------------------------------------- files

    def scene_name(self, t: int) -> str:
        return f"{self.satellite[t]}_MSIL2A_{date_from_days(int(self.days[t])):%Y%m%d}.tif"

    def write_scenes(self, folder: Path) -> list[Path]:
        """One 7-band uint16 GeoTIFF per date (B02..B12, SCL), DN = reflectance*10000+1000."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        h, w = self.shape
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": w,
            "height": h,
            "count": len(SCENE_BANDS),
            "dtype": "uint16",
            "crs": self.crs,
            "transform": self.transform,
            "nodata": 0,
            "compress": "deflate",
            "tiled": w >= 256 and h >= 256,
        }
        paths: list[Path] = []
        for t in range(self.days.size):
            dn = np.round(self.sky.reflectance[:, t] * QUANTIFICATION + DN_OFFSET)
            data = np.empty((len(SCENE_BANDS), h, w), dtype=np.uint16)
            data[:-1] = np.clip(dn, 1, 65535).astype(np.uint16)
            data[-1] = self.sky.scl[t]
            path = folder / self.scene_name(t)
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(data)
                for i, band in enumerate(SCENE_BANDS, start=1):
                    dst.set_band_description(i, band)
                dst.update_tags(
                    BOA_ADD_OFFSET=str(-DN_OFFSET),
                    BOA_QUANTIFICATION_VALUE=str(QUANTIFICATION),
                    SPACECRAFT_NAME=f"Sentinel-{self.satellite[t][1:]}",
                    SENSING_DATE=date_from_days(int(self.days[t])).isoformat(),
                    RELATIVE_ORBIT=str(RELATIVE_ORBITS[int(self.sky.orbit[t])]),
                    PROCESSING_LEVEL="Level-2A",
                    GENERATOR="canopywatch_dev.landscapes",
                )
            paths.append(path)
        return paths


def generate(config: LandscapeConfig) -> Landscape:
    """The scene of ``config``: the same config always gives the same scene."""
    settings = config.settings()
    ground_seq, sky_seq = np.random.SeedSequence([config.seed, 0x1A7D5CA]).spawn(2)
    n = config.size_px
    start, end = days_since_epoch(config.start), days_since_epoch(config.end)
    ground = build_ground(
        settings, np.random.default_rng(ground_seq), n, start, end, config.pixel_m
    )
    sky_rng = np.random.default_rng(sky_seq)
    days, index = schedule(config, settings, sky_rng)
    sky = observe(ground.surface(days), days, index, settings, sky_rng)
    # a scene's corner depends on the seed, so scenes do not all lie on one spot
    x0 = 500_000.0 + (config.seed % 97) * 5_000.0
    y0 = 7_400_000.0 - (config.seed % 89) * 5_000.0
    transform = Affine(config.pixel_m, 0.0, x0, 0.0, -config.pixel_m, y0)
    return Landscape(
        config=config,
        settings=settings,
        days=days,
        transform=transform,
        crs=rasterio.crs.CRS.from_epsg(config.epsg),
        shape=(n, n),
        ground=ground,
        sky=sky,
    )
