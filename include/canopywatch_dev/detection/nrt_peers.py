"""JRC's ``nrt`` monitors (EWMA, CuSum, MoSum, CCDC, IQR; https://github.com/ec-jrc/nrt) as
peers of the default detector, for ``benchmarks/detection_peers.py``.

Each monitor is used as its documentation shows: fitted on the NDVI of the clear looks of a
stable history, then fed every later date with ``monitor``; a confirmed break (mask value 3)
becomes a high alert dated on the day ``nrt`` confirmed it (``detection_date``; ``nrt``
keeps no first-anomaly date). CCDC screens its history for cloud with green and SWIR-1
(``CCDC_RIRLS``), as its documentation asks. The monitors test both directions; a break
whose residual on its detection date is above the prediction is a greening, not a
clearing, and is dropped. Everything else is ``nrt``'s default except ``trend=False``: a
one-year history cannot tell a trend from its season (CCDC keeps its trend: its stable-history
test, ``CCDC-stable``, needs one).

The forest they monitor is given (the benchmark passes the default detector's own forest
baseline), so the comparison is of the monitoring alone, on the same pixels.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from canopywatch.detect.baseline import STATUS_HIGH, PixelAlerts
from canopywatch.detect.indices import compute_index
from canopywatch.detect.observations import ObservationStack

NRT_MONITORS = ("EWMA", "CuSum", "MoSum", "CCDC", "IQR")
EPOCH = dt.datetime(1970, 1, 1)


def _monitor_class(name: str) -> Any:
    from nrt.monitor.ccdc import CCDC
    from nrt.monitor.cusum import CuSum
    from nrt.monitor.ewma import EWMA
    from nrt.monitor.iqr import IQR
    from nrt.monitor.mosum import MoSum

    classes: dict[str, Any] = {"EWMA": EWMA, "CuSum": CuSum, "MoSum": MoSum, "CCDC": CCDC,
                               "IQR": IQR}  # fmt: skip
    return classes[name]


def _cube(values: npt.NDArray[np.float64], days: npt.NDArray[np.int64]) -> Any:
    import pandas as pd
    import xarray as xr

    height, width = values.shape[1:]
    return xr.DataArray(
        values,
        dims=("time", "y", "x"),
        coords={"time": pd.to_datetime(days, unit="D"), "y": np.arange(height),
                "x": np.arange(width)},
    )  # fmt: skip


def detect_nrt(
    stack: ObservationStack,
    monitor: str,
    *,
    monitor_start: int,
    forest: npt.NDArray[np.bool_],
) -> PixelAlerts:
    """Alerts of ``nrt``'s ``monitor`` over ``forest``: history before ``monitor_start``
    (days since epoch), monitoring from it."""
    with warnings.catch_warnings():
        # all-cloud pixels and dates: nrt's nan-reductions and numba warn on each
        warnings.simplefilter("ignore")
        return _detect(stack, monitor, monitor_start, forest)


def _detect(
    stack: ObservationStack, monitor: str, monitor_start: int, forest: npt.NDArray[np.bool_]
) -> PixelAlerts:
    clear = stack.clear
    ndvi = compute_index("ndvi", stack.bands).astype(np.float64)
    ndvi[~clear] = np.nan
    history = stack.days < monitor_start
    cube = _cube(ndvi[history], stack.days[history])
    model = _monitor_class(monitor)(trend=monitor == "CCDC", mask=forest.astype(np.uint8))
    if monitor == "CCDC":
        bands = {}
        for band in ("B03", "B11"):
            values = stack.bands[band][history].astype(np.float64)
            values[~clear[history]] = np.nan
            bands[band] = _cube(values, stack.days[history])
        model.fit(dataarray=cube, green=bands["B03"], swir=bands["B11"], scaling_factor=1)
    else:
        model.fit(dataarray=cube)
    for position in np.flatnonzero(~history):
        day = EPOCH + dt.timedelta(days=int(stack.days[position]))
        model.monitor(array=ndvi[position], date=day)
    broke = np.asarray(model.mask) == 3
    detected = np.asarray(model.detection_date).astype(np.int64)
    for detection_day in np.unique(detected[broke]).tolist():
        on_day = broke & (detected == detection_day)
        look = int(np.searchsorted(stack.days, detection_day))
        predicted = np.asarray(model.predict(EPOCH + dt.timedelta(days=detection_day)))
        greener = on_day & np.isfinite(ndvi[look]) & (ndvi[look] > predicted)
        broke &= ~greener
    first_day = np.where(broke, detected, -1).astype(np.int64)
    return PixelAlerts(
        first_day=first_day,
        confirmed_day=first_day.copy(),
        score=np.where(broke, np.float32(0.9), np.float32(0.0)).astype(np.float32),
        monitored=forest.copy(),
        status=np.where(broke, STATUS_HIGH, 0).astype(np.int8),
    )
