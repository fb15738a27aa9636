"""Named COG profiles: the creation options every COG of the product is written with.

A profile is tiled (512 x 512 blocks, pixel-interleaved), compressed losslessly with a
predictor chosen from the sample type (horizontal differencing for integers, floating
point for floats), carries internal overviews (at least one level, more until the
smallest is under a block; averaged for continuous bands, nearest for class bands such as
SCL) and a nodata value where the scene's ``dataMask`` (or ``alpha``) band is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# bands whose values are classes: overviews of them must pick, never average
CATEGORICAL_BANDS = frozenset({"SCL"})
MASK_BANDS = ("dataMask", "alpha")
# GDAL colour interpretation by band name (the others are "Undefined")
COLOUR_INTERPRETATION = {
    "B04": "Red", "B03": "Green", "B02": "Blue",
    "red": "Red", "green": "Green", "blue": "Blue",
}  # fmt: skip


class UnknownProfileError(ValueError):
    """A profile name that is not in ``PROFILES``."""


@dataclass(frozen=True)
class CogProfile:
    name: str
    compress: str  # "DEFLATE" | "ZSTD"
    level: int  # ZLEVEL for DEFLATE, ZSTD_LEVEL for ZSTD
    blocksize: int = 512
    min_overview_levels: int = 1
    # resampling of the overviews: continuous data vs. class bands (SCL)
    resampling: str = "average"
    categorical_resampling: str = "nearest"
    extra: dict[str, Any] = field(default_factory=dict)

    def creation_options(self, dtype: str) -> dict[str, Any]:
        """rio-cogeo ``dst_kwargs`` for samples of ``dtype``."""
        predictor = 3 if dtype.startswith("float") else 2
        level_key = "zlevel" if self.compress == "DEFLATE" else "zstd_level"
        return {
            "driver": "GTiff",
            "interleave": "pixel",
            "tiled": True,
            "blockxsize": self.blocksize,
            "blockysize": self.blocksize,
            "compress": self.compress,
            "predictor": predictor,
            level_key: self.level,
            **self.extra,
        }

    def cog_driver_options(self, dtype: str) -> dict[str, Any]:
        """Creation options of GDAL's COG driver (overviews: the ones already built)."""
        predictor = "FLOATING_POINT" if dtype.startswith("float") else "STANDARD"
        return {
            "driver": "COG",
            "COMPRESS": self.compress,
            "LEVEL": self.level,
            "PREDICTOR": predictor,
            "BLOCKSIZE": self.blocksize,
            "OVERVIEWS": "FORCE_USE_EXISTING",
            **{k.upper(): v for k, v in self.extra.items()},
        }

    def overview_resampling(self, band_names: tuple[str, ...]) -> str:
        """One resampling for a whole file of these bands (GDAL's COG driver alone)."""
        if CATEGORICAL_BANDS.intersection(band_names):
            return self.categorical_resampling
        return self.resampling

    def band_resampling(self, band_name: str) -> str:
        """Overview resampling of one band: classes are picked, values averaged."""
        if band_name in CATEGORICAL_BANDS:
            return self.categorical_resampling
        return self.resampling


PROFILES: dict[str, CogProfile] = {
    p.name: p
    for p in (
        # the default: DEFLATE is read by every GDAL, QGIS and browser COG reader
        CogProfile("canopywatch-deflate", "DEFLATE", level=6),
        # smaller and faster to write, needs GDAL >= 2.3 built with ZSTD on the reading side
        CogProfile("canopywatch-zstd", "ZSTD", level=9),
    )
}
DEFAULT_PROFILE = "canopywatch-deflate"


def get_profile(name: str = DEFAULT_PROFILE) -> CogProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(
            f"unknown COG profile {name!r}; available: {', '.join(sorted(PROFILES))}"
        ) from None
