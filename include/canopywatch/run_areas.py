"""Which areas a monitoring run covers, from its conf, refused readably when it cannot be run.

- ``bbox`` given: that area (named ``aoi_name`` when given);
- ``aoi_name`` without ``bbox``: the registered area of that name or id, and only that one
  (an unknown name is refused: it used to run over every registered area);
- neither: every active registered area (PostGIS and the YAML file, ``aois.merge``).

``check_conf_values`` refuses NaN, Infinity and NUL characters anywhere in a conf (JSON
lets them through as ``NaN`` / ``Infinity`` / ``\\u0000``; PostgreSQL, Kafka keys and
the forms would choke on them later, unreadably).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canopywatch.download import Aoi, aoi_id_for, make_aoi
from canopywatch.settings import Settings
from canopywatch.storage.aois import RegisteredAoi


class RunConfError(ValueError):
    """A run conf that cannot be used; the message is meant for the person triggering."""


def check_conf_values(value: Any, path: str = "conf") -> None:
    """Raise ``RunConfError`` naming the first NaN, Infinity or NUL character in ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RunConfError(f"{path} is {value}: give a finite number")
    if isinstance(value, str) and "\x00" in value:
        raise RunConfError(f"{path} contains a NUL character")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                raise RunConfError(f"{path} has a key with a NUL character")
            check_conf_values(item, f"{path}.{key}")
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            check_conf_values(item, f"{path}[{index}]")


@dataclass(frozen=True)
class RunArea:
    aoi: Aoi
    function: str
    max_cloud: float
    source: str  # "bbox" | "registered"


def select_areas(
    params: Mapping[str, Any],
    registered: Callable[[], Sequence[RegisteredAoi]],
    settings: Settings,
    *,
    function: str,
    max_cloud: float,
) -> list[RunArea]:
    """The run's areas (``registered()`` is called only when the conf has no bbox)."""
    check_conf_values(dict(params))
    name = params.get("aoi_name")
    if name is not None and not isinstance(name, str):
        raise RunConfError(f"aoi_name must be text, got {type(name).__name__}")
    if params.get("bbox"):
        aoi = make_aoi(params["bbox"], name, settings)
        return [RunArea(aoi, function, max_cloud, "bbox")]
    areas = list(registered())
    if name and name.strip():
        wanted = aoi_id_for(name)
        match = [a for a in areas if a.aoi_id == wanted or a.name == name.strip()]
        if not match:
            known = ", ".join(a.aoi_id for a in areas) or "none"
            raise RunConfError(
                f"aoi_name {name!r} is not a registered active area (registered: {known}); "
                "give a bbox to monitor a new area, or register it with `canopywatch aoi add`"
            )
        areas = match[:1]
    return [
        RunArea(make_aoi(a.area(), a.aoi_id, settings), a.function, a.max_cloud, "registered")
        for a in areas
    ]
