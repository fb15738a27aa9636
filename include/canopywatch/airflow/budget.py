"""The monitoring run's cost, before it is spent: Copernicus processing units of its requests.

``estimate_cost`` runs between the catalog search (free) and publishing the download
requests: it logs what the run will spend (scenes already stored are skipped at download
and cost nothing) and refuses a run over ``CANOPYWATCH_PU_BUDGET`` (``Settings.pu_budget``;
0 = no limit), the same estimate ``canopywatch download --estimate`` prints.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from canopywatch.airflow.connections import object_store
from canopywatch.airflow.payloads import TileSearch
from canopywatch.download import scene_key
from canopywatch.settings import Settings
from canopywatch.sources.units import Estimate, check_budget, estimate, format_units

log = logging.getLogger(__name__)


def estimate_cost(
    searches: Sequence[TileSearch], *, aws_conn_id: str, settings: Settings
) -> Estimate:
    """Log the run's processing units; raise ``BudgetError`` (a ValueError) over budget."""
    store = object_store(aws_conn_id, settings.bucket)
    planned = [request for search in searches for request in search.download_requests()]
    stored = [
        store.head(scene_key(request, settings.geohash_precision).key) is not None
        for request in planned
    ]
    spend = estimate(planned, stored=stored)
    budget = settings.pu_budget
    log.info(
        "cost estimate: %s; budget %s (CANOPYWATCH_PU_BUDGET)",
        spend.describe(),
        f"{format_units(budget)} processing units" if budget > 0 else "unlimited",
    )
    check_budget(spend, budget)
    return spend
