"""Named COG profiles: the creation options every COG of the product is written with.

A profile is tiled (512 x 512 blocks, pixel-interleaved), compressed losslessly with a
predictor chosen from the sample type (horizontal differencing for integers, floating
point for floats), carries internal overviews (at least one level, more until the
smallest is under a block) and a per-dataset mask built from the scene's ``dataMask``
(or ``alpha``) band, so viewers see no-data without a nodata value that could collide
with real samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# bands whose values are classes: overviews of them must pick, never average
CATEGORICAL_BANDS = frozenset({"SCL"})
MASK_BANDS = ("dataMask", "alpha")


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

    def overview_resampling(self, band_names: tuple[str, ...]) -> str:
        if CATEGORICAL_BANDS.intersection(band_names):
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
