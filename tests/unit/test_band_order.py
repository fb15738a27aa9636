"""The weekly path's band order is tied to the ``s2l2a_bands`` evalscript by a test.

The Process API writes the evalscript's ``evaluatePixel`` output as an unnamed multi-band
GeoTIFF; ``detect.observations.SceneFilesSource`` (what ``weekly`` scores) names those bands
by ``sentinel2.RAW_BAND_ORDER``. If the script's return order and that tuple drift apart,
NIR is read as red and every NDVI is wrong without an error, so both are checked: the
script's text, and the script run in V8 (the dev kit's evaluator) into a file the detector's
reader then names.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from canopywatch.detect.observations import SceneFilesSource
from canopywatch.evalscripts import FUNCTIONS
from canopywatch.sentinel2 import BANDS, RAW_BAND_ORDER
from canopywatch_dev.evalscript import Evalscript

SCRIPT = FUNCTIONS["s2l2a_bands"].evalscript
# distinct harmonised DN per band (a forest pixel: dark visible, bright NIR), SCL 4 = vegetation
DN = {"B02": 210, "B03": 480, "B04": 230, "B08": 3050, "B11": 1410, "B12": 590}


def returned_bands(script: str) -> list[str]:
    """The band names ``evaluatePixel`` returns, in order (``[sample.B02, ...]``)."""
    body = re.search(r"function\s+evaluatePixel\s*\(\s*(\w+)\s*\)\s*\{(.*?)\n\}", script, re.S)
    assert body, "no evaluatePixel in the evalscript"
    sample, code = body.group(1), body.group(2)
    returned = re.search(r"return\s*\[(.*?)\]\s*;", code, re.S)
    assert returned, "evaluatePixel does not return a band array"
    items = [item.strip() for item in returned.group(1).split(",")]
    names = [re.fullmatch(rf"{sample}\.(\w+)", item) for item in items]
    assert all(names), f"not plain band reads: {items}"
    return [match.group(1) for match in names if match]


def test_the_evalscript_returns_the_bands_in_the_order_the_reader_names_them():
    order = returned_bands(SCRIPT)
    assert order == ["B02", "B03", "B04", "B08", "B11", "B12", "SCL", "dataMask"]
    assert tuple(order) == RAW_BAND_ORDER == FUNCTIONS["s2l2a_bands"].bands
    assert tuple(order[: len(BANDS)]) == BANDS
    with Evalscript(SCRIPT) as script:
        (output,) = script.setup.outputs
        assert (output.id, output.bands, output.sample_type) == ("default", 8, "UINT16")
        assert [band.name for band in script.setup.inputs] == order
        assert {band.units for band in script.setup.inputs} == {"DN"}


def test_a_scene_from_the_evalscript_is_read_with_each_band_under_its_own_name(tmp_path):
    height, width = 4, 5
    samples = {name: np.full((height, width), dn, dtype=np.uint16) for name, dn in DN.items()}
    samples["SCL"] = np.full((height, width), 4, dtype=np.uint16)
    samples["dataMask"] = np.ones((height, width), dtype=np.uint16)
    with Evalscript(SCRIPT) as script:
        scales = {band.name: 1.0 for band in script.setup.inputs}  # units DN
        pixels = script.evaluate(samples, scales, {})["default"]  # (H, W, 8)
    path = tmp_path / "raw.tif"
    # as the Process API writes it: one UINT16 band per output value, no band names
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=pixels.shape[2],
        dtype="uint16", crs="EPSG:32721", transform=from_origin(455000, 9215000, 10, 10),
    ) as dst:  # fmt: skip
        dst.write(np.moveaxis(pixels, 2, 0).astype(np.uint16))
        assert set(dst.descriptions) == {None}
    day = (date(2024, 3, 5) - date(1970, 1, 1)).days
    stack = SceneFilesSource([(day, path)]).read()  # what weekly.py scores, no band order given
    assert stack.clear.all()
    for name, dn in DN.items():
        assert stack.bands[name][0] == pytest.approx(np.full((height, width), dn / 10000))
    ndvi = (stack.bands["B08"] - stack.bands["B04"]) / (stack.bands["B08"] + stack.bands["B04"])
    assert float(ndvi.mean()) == pytest.approx((3050 - 230) / (3050 + 230), rel=1e-5)  # 0.86
