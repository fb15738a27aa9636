"""Synthetic raw scenes shaped like the downloads (for tests, the benchmark and demos).

A raw scene of the ``s2l2a_bands`` evalscript: uint16 DN bands B02..B12, SCL and
``dataMask`` (a no-data strip on one side, as at a swath edge), smooth fields plus
noise so it compresses like real imagery rather than like noise or constants.
"""

from __future__ import annotations

import numpy as np
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from canopywatch.evalscripts import FUNCTIONS

S2L2A_BANDS = FUNCTIONS["s2l2a_bands"].bands


def synthetic_raw(
    width: int, height: int, *, seed: int = 0, epsg: int = 32721, nodata_fraction: float = 0.1
) -> bytes:
    """A GeoTIFF (DEFLATE, striped, as a download arrives) with the s2l2a_bands layout."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    field = np.sin(6 * rows + rng.uniform(0, 3)) * np.cos(5 * cols + rng.uniform(0, 3))
    bands = np.empty((len(S2L2A_BANDS), height, width), dtype=np.uint16)
    for index in range(6):  # reflectance DN = reflectance * 10000 + 1000
        noise = rng.normal(0.0, 0.01, (height, width)).astype(np.float32)
        reflectance = np.clip(0.05 + 0.03 * index + 0.05 * field + noise, 0.0, 1.0)
        bands[index] = (reflectance * 10000 + 1000).astype(np.uint16)
    bands[6] = np.where(field > 0.6, 8, 4).astype(np.uint16)  # SCL: cloud over vegetation
    valid = np.ones((height, width), dtype=bool)
    valid[:, : int(width * nodata_fraction)] = False
    bands[7] = valid.astype(np.uint16)
    bands[:7, ~valid] = 0
    with MemoryFile() as memfile:
        with memfile.open(
            driver="GTiff",
            width=width,
            height=height,
            count=len(S2L2A_BANDS),
            dtype="uint16",
            crs=f"EPSG:{epsg}",
            transform=from_origin(500000.0, 9200000.0, 10.0, 10.0),
            compress="deflate",
        ) as dataset:
            dataset.write(bands)
        data: bytes = memfile.read()
    return data
