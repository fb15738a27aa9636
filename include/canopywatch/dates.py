"""Days since 1970-01-01: the integer time axis of observation stacks, alerts and labels."""

from __future__ import annotations

import datetime as dt
from typing import Final

EPOCH: Final = dt.date(1970, 1, 1)
_EPOCH_ORDINAL: Final = EPOCH.toordinal()


def days_since_epoch(day: dt.date) -> int:
    """Whole days from 1970-01-01 to ``day`` (a ``datetime`` counts by its date)."""
    return day.toordinal() - _EPOCH_ORDINAL


def date_from_days(days: int) -> dt.date:
    """The date ``days`` days after 1970-01-01 (inverse of ``days_since_epoch``)."""
    return dt.date.fromordinal(int(days) + _EPOCH_ORDINAL)
