"""Per-pixel layers written beside the alert polygons, as Cloud-Optimized GeoTIFFs.

* ``<out>_forest_baseline.tif``: the forest the detector monitored (1), not (0); nodata 255.
* ``<out>_disturbance.tif``: each pixel's disturbance, in the spirit of OPERA DIST-ALERT's
  VEG-DIST-DATE / -STATUS / -CONF and the GLAD/RADD per-pixel dates, so a user can see which
  pixels a polygon holds, when each broke and what became of it:

  1. ``first_date``: the first disturbed observation of the pixel's (last) episode, YYYYMMDD;
  2. ``confirmed_date``: the observation that confirmed it (``high``), YYYYMMDD;
  3. ``status``: 1 low, 2 high, 3 withdrawn, 4 plantation_harvest;
  4. ``confidence``: the score of an active (low/high) pixel, percent (50-99).

  0 is "no disturbance" in every band (the nodata value, so undisturbed pixels show
  transparent in a GIS). Dates are YYYYMMDD integers: they read as dates in a GIS's identify
  tool and compare in order (``first_date >= 20240301``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from canopywatch.dates import EPOCH
from canopywatch.detect.baseline import (
    STATUS_HIGH,
    STATUS_LOW,
    STATUS_NONE,
    STATUS_PLANTATION_HARVEST,
    STATUS_WITHDRAWN,
)

if TYPE_CHECKING:
    from canopywatch.detect.detector import AreaDetection

DISTURBANCE_BANDS: Final = ("first_date", "confirmed_date", "status", "confidence")
STATUS_NAMES: Final = {
    STATUS_LOW: "low",
    STATUS_HIGH: "high",
    STATUS_WITHDRAWN: "withdrawn",
    STATUS_PLANTATION_HARVEST: "plantation_harvest",
}
COG_MEDIA_TYPE: Final = "image/tiff; application=geotiff; profile=cloud-optimized"


def yyyymmdd(days: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """Days since 1970-01-01 as YYYYMMDD integers; negative days (none) as 0."""
    dates = np.datetime64(EPOCH.isoformat(), "D") + np.maximum(days, 0).astype("timedelta64[D]")
    years = dates.astype("datetime64[Y]")
    months = dates.astype("datetime64[M]")
    year = years.astype(np.int64) + 1970
    month = (months - years).astype(np.int64) + 1
    day = (dates - months).astype(np.int64) + 1
    encoded = np.where(days >= 0, year * 10_000 + month * 100 + day, 0)
    return encoded.astype(np.int32)


def _write_cog(
    path: Path,
    result: AreaDetection,
    bands: Mapping[str, npt.NDArray[np.generic]],
    nodata: int,
    tags: dict[str, str],
) -> Path:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    grid = result.grid
    stacked = np.stack(list(bands.values()))
    # written whole, then renamed: a reader (the API's baseline sync, a plot check) never
    # opens half a file
    part = path.with_name(f".{path.name}.part")
    with rasterio.open(
        part,
        "w",
        driver="COG",
        width=grid.width,
        height=grid.height,
        count=len(bands),
        dtype=stacked.dtype.name,
        crs=grid.crs,
        transform=grid.transform,
        compress="deflate",
        nodata=nodata,
    ) as dst:
        dst.write(stacked)
        for index, name in enumerate(bands, start=1):
            dst.set_band_description(index, name)
        dst.update_tags(METHOD=result.model_version, **tags)
    part.replace(path)
    return path


def write_forest_baseline(result: AreaDetection, path: Path) -> Path:
    """The monitored forest pixels (1) as a layer beside the alerts."""
    monitored = result.pixel_alerts.monitored.astype(np.uint8)
    return _write_cog(
        path,
        result,
        {"forest_baseline": monitored},
        nodata=255,
        tags={"DESCRIPTION": "1 = forest monitored by the detector"},
    )


def write_disturbance(result: AreaDetection, path: Path) -> Path:
    """Each pixel's first-disturbance date, confirmation date, status and confidence."""
    pixels = result.pixel_alerts
    status = pixels.status_codes().astype(np.int32)
    disturbed = status != STATUS_NONE
    first = np.where(disturbed, pixels.first_day, -1)
    confirmed = np.where(disturbed, pixels.confirmed_day, -1)
    active = (status == STATUS_LOW) | (status == STATUS_HIGH)
    confidence = np.where(active, np.clip(np.rint(pixels.score * 100), 1, 99), 0)
    bands = {
        "first_date": yyyymmdd(first),
        "confirmed_date": yyyymmdd(confirmed),
        "status": status,
        "confidence": confidence.astype(np.int32),
    }
    codes = ",".join(f"{code}={name}" for code, name in STATUS_NAMES.items())
    return _write_cog(
        path,
        result,
        bands,
        nodata=0,
        tags={
            "DESCRIPTION": "per-pixel disturbance: 0 = none in every band",
            "DATE_FORMAT": "YYYYMMDD",
            "STATUS_CODES": codes,
            "CONFIDENCE_UNIT": "percent",
        },
    )
