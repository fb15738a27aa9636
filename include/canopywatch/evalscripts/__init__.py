"""Named evalscripts ("sentinel hub functions") shipped as files beside this module.

Each function declares the bands and sample type its single GeoTIFF output carries,
so a download can be verified before it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


class UnknownFunctionError(ValueError):
    """A function name with no evalscript."""


@dataclass(frozen=True)
class EvalscriptFunction:
    name: str
    bands: tuple[str, ...]
    dtype: str

    @property
    def evalscript(self) -> str:
        return resources.files(__package__).joinpath(f"{self.name}.js").read_text()


FUNCTIONS: dict[str, EvalscriptFunction] = {
    f.name: f
    for f in (
        EvalscriptFunction(
            "s2l2a_bands", ("B02", "B03", "B04", "B08", "B11", "B12", "SCL", "dataMask"), "uint16"
        ),
        EvalscriptFunction("true_color", ("red", "green", "blue", "alpha"), "uint8"),
        EvalscriptFunction("ndvi", ("ndvi", "dataMask"), "float32"),
    )
}


def get_function(name: str) -> EvalscriptFunction:
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise UnknownFunctionError(
            f"unknown function {name!r}; available: {', '.join(sorted(FUNCTIONS))}"
        ) from None
