"""The Statistical API (``POST /api/v1/statistics``): per-interval statistics of an
evalscript's outputs over an area, without the imagery.

The request is the service's: ``input`` as for the Process API (``bounds`` with ``bbox`` or
``geometry`` and ``properties.crs``, one ``data`` source with ``dataFilter``
``maxCloudCoverage`` / ``mosaickingOrder`` and ``processing.harmonizeValues``) and
``aggregation``: ``timeRange`` {from, to}, ``aggregationInterval`` {of: an ISO 8601
duration of days or weeks, e.g. ``P5D``, ``P1W``; ``lastIntervalBehavior`` SKIP (default),
SHORTEN or EXTEND}, ``evalscript`` and ``resx``/``resy`` or ``width``/``height``. The
evalscript must have an output ``dataMask``: a pixel counts where it is non-zero.

Each interval is mosaicked (SIMPLE, in the data filter's order) from the scenes acquired in
it and evaluated like a Process API request; an interval without a scene is left out, as
the service leaves out intervals without data. The answer is the service's shape::

    {"data": [{"interval": {"from": ..., "to": ...},
               "outputs": {"<output id>": {"bands": {"B0": {"stats": {
                   "min", "max", "mean", "stDev", "sampleCount", "noDataCount"}}}}}}],
     "status": "OK"}

``sampleCount`` counts the pixels of the area (inside the geometry when one is given),
``noDataCount`` those without a value (``dataMask`` 0 or not finite); with no value at all
``min``/``max``/``mean``/``stDev`` are ``"NaN"``, as the service writes them. ``stDev`` is
the population standard deviation. Processing units: a Process API request's per interval.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from canopywatch_dev.cdse_emulator.config import DATA_MASK, SERVED_BANDS
from canopywatch_dev.cdse_emulator.errors import BadPayload
from canopywatch_dev.cdse_emulator.process import (
    ProcessRequest,
    order_scenes,
    parse_process_request,
    processing_units,
    sample_values,
    scene_metadata,
)
from canopywatch_dev.cdse_emulator.search import Comparison, SceneQuery, parse_time
from canopywatch_dev.cdse_world import World, footprint_lonlat, mosaic_simple
from canopywatch_dev.evalscript import Evalscript, band_scales

_DURATION = re.compile(r"^P(?:(?P<weeks>\d+)W|(?P<days>\d+)D)$")
LAST_INTERVAL = ("SKIP", "SHORTEN", "EXTEND")
_SIZE_KEYS = ("resx", "resy", "width", "height")


@dataclass(frozen=True)
class StatisticalRequest:
    process: ProcessRequest  # the area, grid, data filter and evalscript
    start: datetime
    end: datetime
    step: timedelta
    last_interval: str


def _step(value: Any) -> timedelta:
    match = _DURATION.match(str(value or ""))
    if match is None:
        raise BadPayload(
            f"aggregationInterval.of {value!r} must be an ISO 8601 duration of days or weeks "
            "(e.g. P1D, P5D, P1W)",
            "aggregation.aggregationInterval.of",
            value,
        )
    days = int(match["days"]) if match["days"] else 7 * int(match["weeks"])
    if days < 1:
        raise BadPayload("aggregationInterval must be at least a day", "aggregation", value)
    return timedelta(days=days)


def parse_statistical_request(body: Mapping[str, Any]) -> StatisticalRequest:
    aggregation = body.get("aggregation")
    if not isinstance(aggregation, dict):
        raise BadPayload("aggregation is required", "aggregation", aggregation)
    time_range = aggregation.get("timeRange") or {}
    if not isinstance(time_range, dict) or not time_range.get("from") or not time_range.get("to"):
        raise BadPayload(
            "aggregation.timeRange needs from and to", "aggregation.timeRange", time_range
        )
    start = parse_time(str(time_range["from"]), "aggregation.timeRange.from")
    end = parse_time(str(time_range["to"]), "aggregation.timeRange.to")
    if end <= start:
        raise BadPayload("aggregation.timeRange ends before it starts", "aggregation", time_range)
    interval = aggregation.get("aggregationInterval") or {}
    if not isinstance(interval, dict):
        raise BadPayload("aggregationInterval must be an object", "aggregation", interval)
    last = str(interval.get("lastIntervalBehavior", "SKIP"))
    if last not in LAST_INTERVAL:
        raise BadPayload(
            f"lastIntervalBehavior must be one of {', '.join(LAST_INTERVAL)}",
            "aggregation.aggregationInterval.lastIntervalBehavior",
            last,
        )
    # the Process API's parser checks the area, the data source and the size
    request_input = body.get("input")
    if not isinstance(request_input, dict):
        raise BadPayload("input is required", "input", request_input)
    process = parse_process_request(
        {
            "input": request_input,
            "output": {k: aggregation[k] for k in _SIZE_KEYS if k in aggregation},
            "evalscript": aggregation.get("evalscript"),
        }
    )
    return StatisticalRequest(process, start, end, _step(interval.get("of")), last)


def _intervals(request: StatisticalRequest) -> list[tuple[datetime, datetime]]:
    out = []
    begin = request.start
    while begin < request.end:
        finish = begin + request.step
        if finish > request.end:
            if request.last_interval == "SKIP":
                break
            if request.last_interval == "SHORTEN":
                finish = request.end
        out.append((begin, finish))
        begin = begin + request.step
    return out


def _instant(moment: datetime) -> str:
    """As the service writes interval bounds: ``2024-01-01T00:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _band_stats(values: np.ndarray[Any, Any], valid: np.ndarray[Any, Any], total: int) -> Any:
    chosen = values[valid]
    count = int(chosen.size)
    if count == 0:
        stats: dict[str, Any] = {"min": "NaN", "max": "NaN", "mean": "NaN", "stDev": "NaN"}
    else:
        stats = {
            "min": float(chosen.min()),
            "max": float(chosen.max()),
            "mean": float(chosen.mean()),
            "stDev": float(chosen.std()),
        }
    return {"stats": {**stats, "sampleCount": total, "noDataCount": total - count}}


def render_statistics(world: World, request: StatisticalRequest) -> tuple[dict[str, Any], float]:
    """The response document and the processing units it spent."""
    process = request.process
    grid = process.grid
    with Evalscript(process.evalscript) as script:
        setup = script.setup
        if setup.output(DATA_MASK) is None:
            raise BadPayload(
                "The evalscript of a statistical request must have a dataMask output",
                "aggregation.evalscript",
                None,
            )
        input_names = [band.name for band in setup.inputs]
        unknown = sorted(set(input_names) - set(SERVED_BANDS))
        if unknown:
            raise BadPayload(
                f"Bands {unknown} are not served by this endpoint; it serves {list(SERVED_BANDS)}",
                "aggregation.evalscript",
                unknown,
            )
        area = footprint_lonlat(grid.crs, grid.bounds)
        inside = (
            process.inside
            if process.inside is not None
            else np.ones((grid.height, grid.width), dtype=bool)
        )
        total = int(inside.sum())
        data = []
        units = 0.0
        input_bands = len([n for n in input_names if n != DATA_MASK])
        float_output = any(spec.sample_type == "FLOAT32" for spec in setup.outputs)
        for begin, finish in _intervals(request):
            query = SceneQuery(
                area=area,
                start=begin,
                end=finish,
                comparisons=(Comparison("eo:cloud_cover", "<=", process.max_cloud_cover),),
            )
            scenes = [s for s in query.select(world) if s.datetime < finish]
            if not scenes:
                continue
            mosaic = mosaic_simple(
                order_scenes(scenes, process.mosaicking_order),
                grid,
                [n for n in input_names if n != DATA_MASK],
                process.inside,
            )
            samples = {n: sample_values(mosaic, n, process.harmonize) for n in input_names}
            metadata = scene_metadata(mosaic.scenes)
            computed = script.evaluate(samples, band_scales(setup.inputs), metadata)
            has_value = inside & (computed[DATA_MASK][..., 0] != 0)
            outputs = {}
            for spec in setup.outputs:
                if spec.id == DATA_MASK:
                    continue
                values = computed[spec.id]
                outputs[spec.id] = {
                    "bands": {
                        f"B{b}": _band_stats(
                            values[..., b], has_value & np.isfinite(values[..., b]), total
                        )
                        for b in range(spec.bands)
                    }
                }
            data.append(
                {"interval": {"from": _instant(begin), "to": _instant(finish)}, "outputs": outputs}
            )
            units += processing_units(grid.width, grid.height, input_bands, float_output)
    return {"data": data, "status": "OK"}, units
