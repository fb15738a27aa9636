"""Sentinel-2 MSI / L2A facts the product relies on, defined once.

* The analysis bands and their order (B02 B03 B04 B08 B11 B12), and the band order of the
  ``s2l2a_bands`` evalscript output (those six, then ``SCL`` and ``dataMask``).
* Digital numbers: reflectance = (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE with
  QUANTIFICATION_VALUE 10000. From processing baseline 04.00 (products from 2022-01-25 on)
  BOA_ADD_OFFSET is -1000, so stored DN = reflectance * 10000 + 1000; before it the offset
  is 0. DN 0 is no data. Sentinel Hub's harmonized values (the default for
  ``units: "DN"`` requests) already remove the offset. See ``docs/copernicus.md``.
* The scene classification (SCL) classes of Sen2Cor.
* Common names and centre wavelengths of the MSI bands (STAC ``eo:bands``).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

BANDS: Final[tuple[str, ...]] = ("B02", "B03", "B04", "B08", "B11", "B12")
SCL_BAND: Final = "SCL"
DATA_MASK_BAND: Final = "dataMask"
RAW_BAND_ORDER: Final[tuple[str, ...]] = (*BANDS, SCL_BAND, DATA_MASK_BAND)

# the credit every product derived from Sentinel-2 carries (Copernicus data licence)
ATTRIBUTION: Final = "Contains modified Copernicus Sentinel data"
REFLECTANCE_SCALE: Final = 10000.0  # QUANTIFICATION_VALUE
NODATA_DN: Final = 0
BOA_ADD_OFFSET_DN: Final = 1000  # DN added to reflectance * 10000 from baseline 04.00 on
OFFSET_BASELINE: Final = "04.00"  # first processing baseline with the offset
OFFSET_SINCE: Final = dt.date(2022, 1, 25)  # baseline 04.00 in operation from this day


def _baseline_key(baseline: str) -> tuple[int, int]:
    major, _, minor = baseline.strip().removeprefix("N").partition(".")
    if not minor and len(major) == 4:  # "0400" as in product names (_N0400_)
        major, minor = major[:2], major[2:]
    return int(major), int(minor or 0)


def boa_add_offset(baseline: str | None = None, sensing_date: dt.date | None = None) -> int:
    """The L2A ``BOA_ADD_OFFSET`` (-1000 or 0) of a product.

    By processing ``baseline`` ("04.00", "05.10", "N0400") when known, else by the
    sensing date (products reprocessed to 04.00+ carry the offset too, so the baseline is
    the better guide); with neither the current baseline's -1000.
    """
    if baseline is not None:
        return -BOA_ADD_OFFSET_DN if _baseline_key(baseline) >= (4, 0) else 0
    if sensing_date is not None and sensing_date < OFFSET_SINCE:
        return 0
    return -BOA_ADD_OFFSET_DN


# Scene classification (SCL) of Sen2Cor L2A.
SCL_NO_DATA: Final = 0
SCL_SATURATED_DEFECTIVE: Final = 1
SCL_DARK_AREA: Final = 2
SCL_CLOUD_SHADOW: Final = 3
SCL_VEGETATION: Final = 4
SCL_NOT_VEGETATED: Final = 5
SCL_WATER: Final = 6
SCL_UNCLASSIFIED: Final = 7
SCL_CLOUD_MEDIUM: Final = 8
SCL_CLOUD_HIGH: Final = 9
SCL_THIN_CIRRUS: Final = 10
SCL_SNOW_ICE: Final = 11
SCL_INVALID: Final[frozenset[int]] = frozenset({0, 1, 3, 8, 9, 10})  # the usual "no observation"
SCL_CLOUDY: Final[frozenset[int]] = frozenset({3, 8, 9, 10})  # cloud shadow, clouds, cirrus

# MSI bands: STAC common name and centre wavelength (µm)
MSI_BANDS: Final[dict[str, tuple[str, float]]] = {
    "B01": ("coastal", 0.443),
    "B02": ("blue", 0.49),
    "B03": ("green", 0.56),
    "B04": ("red", 0.665),
    "B05": ("rededge071", 0.704),
    "B06": ("rededge075", 0.74),
    "B07": ("rededge078", 0.783),
    "B08": ("nir", 0.842),
    "B8A": ("nir08", 0.865),
    "B09": ("nir09", 0.945),
    "B11": ("swir16", 1.61),
    "B12": ("swir22", 2.19),
}
