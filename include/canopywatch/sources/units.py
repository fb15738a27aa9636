"""Copernicus processing units (PU): what a set of Process API requests will cost.

The Sentinel Hub rule (docs.sentinel-hub.com, "Processing Unit definition"), which the
local endpoint applies too and reports in ``x-processingunits-spent``:

    PU = max(width * height / 512², 0.01)       area factor, at least 0.01
         * input bands / 3                       dataMask is free
         * 2 if the output is 32-bit (FLOAT32)   1 for 8 and 16 bits
         * samples per pixel                     1 with SIMPLE mosaicking (our evalscripts)
    and at least 0.005 PU per request.

The free tier has 10,000 PU a month: a full 2500 x 2500 px tile-date of ``s2l2a_bands``
(7 input bands) costs 55.6 PU, so about 180 of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from canopywatch.evalscripts import EvalscriptFunction, get_function
from canopywatch.messages import DownloadRequest

AREA_UNIT_PX = 512 * 512
MIN_AREA_FACTOR = 0.01
MIN_REQUEST_PU = 0.005
FREE_TIER_PU_PER_MONTH = 10_000
_FREE_BANDS = {"dataMask"}
_INPUT_BANDS = re.compile(r"input\s*:\s*\[\s*\{\s*bands\s*:\s*\[([^\]]*)\]", re.S)
_SAMPLE_TYPE = re.compile(r"sampleType\s*:\s*\"(\w+)\"")


class BudgetError(ValueError):
    """A run would spend more processing units than it is allowed to."""


def input_bands(function: EvalscriptFunction) -> tuple[str, ...]:
    """The bands the evalscript's ``setup()`` reads (from the script itself)."""
    match = _INPUT_BANDS.search(function.evalscript)
    if match is None:
        raise ValueError(f"evalscript {function.name!r} declares no input bands")
    return tuple(b.strip().strip("\"'") for b in match.group(1).split(",") if b.strip())


def request_units(function: EvalscriptFunction, width: int, height: int) -> float:
    """Processing units of one Process API request of ``width`` x ``height`` px."""
    if width <= 0 or height <= 0:
        raise ValueError(f"request size {width}x{height} px must be positive")
    bands = [b for b in input_bands(function) if b not in _FREE_BANDS]
    sample = _SAMPLE_TYPE.search(function.evalscript)
    bits_factor = 2.0 if sample is not None and sample.group(1).upper() == "FLOAT32" else 1.0
    area = max(width * height / AREA_UNIT_PX, MIN_AREA_FACTOR)
    return max(area * max(len(bands), 1) / 3.0 * bits_factor, MIN_REQUEST_PU)


@dataclass(frozen=True)
class Estimate:
    """What a run would spend: requests to send, their PU, and what is already stored."""

    requests: int
    processing_units: float
    already_stored: int = 0

    @property
    def share_of_free_month(self) -> float:
        return self.processing_units / FREE_TIER_PU_PER_MONTH

    def describe(self) -> str:
        stored = f" ({self.already_stored} already stored, free)" if self.already_stored else ""
        return (
            f"{self.requests} Process API request(s){stored}: {format_units(self.processing_units)} "
            f"processing units, {self.share_of_free_month:.1%} of the free tier's "
            f"{FREE_TIER_PU_PER_MONTH:,} a month"
        )


def format_units(units: float) -> str:
    """``55.63`` or ``0.8932``: four significant decimals for small amounts."""
    return f"{units:,.2f}" if abs(units) >= 100 else f"{units:,.4f}"


def estimate(requests: Iterable[DownloadRequest], *, stored: Iterable[bool] = ()) -> Estimate:
    """The PU of ``requests``; those flagged in ``stored`` are skipped (nothing is fetched)."""
    flags = list(stored)
    total, count, skipped = 0.0, 0, 0
    for index, request in enumerate(requests):
        if index < len(flags) and flags[index]:
            skipped += 1
            continue
        total += request_units(get_function(request.function), request.width, request.height)
        count += 1
    return Estimate(count, round(total, 6), skipped)


def check_budget(spend: Estimate, budget: float) -> None:
    """Refuse a run over ``budget`` PU (0 or less: no limit) with a message for people."""
    if not math.isfinite(budget):
        raise BudgetError(f"CANOPYWATCH_PU_BUDGET={budget} is not a number of processing units")
    if budget > 0 and spend.processing_units > budget:
        raise BudgetError(
            f"this run would spend {format_units(spend.processing_units)} processing units, over "
            f"the budget of {format_units(budget)} (CANOPYWATCH_PU_BUDGET): {spend.describe()}; narrow the "
            "bbox or the dates, or raise the budget"
        )
