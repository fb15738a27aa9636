"""Corroboration: the alert schema's ``corroborated_by`` from sensor evidence rows.

``corroborated_by`` (``canopywatch.alert_schema``) names the evidence kinds that back an
alert (``acoustic``, ``fire``, ``patrol``; sorted, comma-separated), ``""`` when it was
checked and none was found, null when it was never checked. The evidence rows are those
of ``canopywatch.sensors.evidence`` (any of its three engines). A corroborating kind
raises the confidence by ``CONFIDENCE_STEP`` (the dbt mart ``mart_alert_corroboration``
applies the same rule); the stored score stays the detector's.

``evidence_ids`` (also in the schema) names what: ``{kind: [evidence ids]}`` as JSON text
(the reading ids of chainsaws and hotspots, the track ids of patrols), beside
``corroborated_by`` so that stays a plain, filterable list of kinds for the rows and the
consumers that had it first. ``drought_anomaly`` (``canopywatch.sensors.drought``) is set in
the same pass; neither it nor the evidence changes the alert's status.

``corroborate_catalog`` checks the active alerts in PostGIS against ``sensor_readings``
(the PostGIS reference join), stores the values on each alert and returns the alerts whose
values changed, as ``AlertPublished`` messages to announce on the alerts topic: from
there Delta, the sync and every export carry it like any other field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from canopywatch.alert_schema import ACTIVE_STATUSES, ATTRIBUTE_NAMES
from canopywatch.sensors.evidence import RULES

if TYPE_CHECKING:
    import pandas as pd

    from canopywatch.messages import AlertPublished

EVIDENCE_KINDS: tuple[str, ...] = tuple(sorted(rule.kind for rule in RULES))
CONFIDENCE_STEP = 0.1  # per corroborating kind (the dbt mart's rule)


def corroboration(kinds: Iterable[str]) -> str:
    """The ``corroborated_by`` value for the kinds found (``""`` for none)."""
    found = set(kinds)
    unknown = found - set(EVIDENCE_KINDS)
    if unknown:
        raise ValueError(f"unknown evidence kind(s) {sorted(unknown)}; known: {EVIDENCE_KINDS}")
    return ",".join(sorted(found))


def kinds_of(value: str | None) -> tuple[str, ...]:
    """The kinds a ``corroborated_by`` value names (none for null or ``""``)."""
    return tuple(kind for kind in (value or "").split(",") if kind)


def corroborated_by(alert_ids: Iterable[str], evidence: pd.DataFrame) -> dict[str, str]:
    """Each alert's value from evidence rows (``alert_id``, ``kind``, ...): every alert
    given is checked, so one without rows gets ``""``."""
    by_alert: dict[str, set[str]] = {alert_id: set() for alert_id in alert_ids}
    for alert_id, kind in zip(evidence["alert_id"], evidence["kind"], strict=True):
        if alert_id in by_alert:
            by_alert[alert_id].add(str(kind))
    return {alert_id: corroboration(kinds) for alert_id, kinds in by_alert.items()}


def evidence_ids(alert_ids: Iterable[str], evidence: pd.DataFrame) -> dict[str, str]:
    """Each alert's ``evidence_ids``: compact JSON ``{kind: [evidence ids, sorted]}`` for the
    kinds in its ``corroborated_by`` (``{}`` for none); every alert given is checked."""
    by_alert: dict[str, dict[str, set[str]]] = {alert_id: {} for alert_id in alert_ids}
    for alert_id, kind, evidence_id in zip(
        evidence["alert_id"], evidence["kind"], evidence["evidence_id"], strict=True
    ):
        if alert_id in by_alert:
            corroboration([str(kind)])  # a known kind, or ValueError
            by_alert[alert_id].setdefault(str(kind), set()).add(str(evidence_id))
    return {
        alert_id: json.dumps(
            {kind: sorted(ids) for kind, ids in sorted(kinds.items())}, separators=(",", ":")
        )
        for alert_id, kinds in by_alert.items()
    }


def ids_of(value: str | None) -> dict[str, list[str]]:
    """The ids an ``evidence_ids`` value holds, by kind (none for null or ``{}``)."""
    return dict(json.loads(value)) if value else {}


def raised_confidence(confidence: float, value: str | None) -> float:
    """The score raised by ``CONFIDENCE_STEP`` per corroborating kind (at most 1)."""
    return min(1.0, confidence + CONFIDENCE_STEP * len(kinds_of(value)))


_ACTIVE = ", ".join(f"'{s}'" for s in ACTIVE_STATUSES)
_ALERTS_SQL = f"""
SELECT {", ".join(ATTRIBUTE_NAMES)}, ST_AsGeoJSON(geom, 7)::json AS geometry
FROM alerts WHERE status IN ({_ACTIVE}) AND (%(aoi)s::text IS NULL OR aoi_id = %(aoi)s)
ORDER BY alert_date, alert_id
"""


@dataclass(frozen=True)
class CatalogCorroboration:
    values: dict[str, str]  # alert id -> corroborated_by, for every active alert checked
    changed: list[AlertPublished]  # the alerts whose stored values changed, as messages
    ids: dict[str, str] = field(default_factory=dict)  # alert id -> evidence_ids
    drought: dict[str, str] = field(default_factory=dict)  # alert id -> drought_anomaly

    @property
    def droughts(self) -> int:
        """How many alerts carry a drought anomaly report."""
        return sum(1 for value in self.drought.values() if value not in ("", "{}"))

    @property
    def checked(self) -> int:
        return len(self.values)

    @property
    def corroborated(self) -> int:
        return sum(1 for value in self.values.values() if value)

    def by_kind(self) -> dict[str, int]:
        """How many alerts each evidence kind corroborates."""
        counts: dict[str, int] = {}
        for value in self.values.values():
            for kind in kinds_of(value):
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def corroborate_catalog(conn: Any, aoi: str | None = None) -> CatalogCorroboration:
    """Check the active alerts (of ``aoi``, default all) against the sensor readings in
    PostGIS, store ``corroborated_by`` on them; the alerts whose value changed come back
    as messages, for the alerts topic. Committed in one transaction."""
    from psycopg.rows import dict_row

    from canopywatch.catalog.schema import ensure_schema
    from canopywatch.messages import AlertPublished
    from canopywatch.sensors.catalog import ensure_table
    from canopywatch.sensors.drought import drought_postgis
    from canopywatch.sensors.evidence import evidence_postgis

    # a catalog from before corroborated_by gets the column; no readings yet: every alert
    # is checked, none corroborated
    ensure_schema(conn)
    ensure_table(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_ALERTS_SQL, {"aoi": aoi})
        rows: Sequence[Mapping[str, Any]] = cur.fetchall()
    if not rows:
        return CatalogCorroboration({}, [])
    scope = "(SELECT * FROM alerts WHERE status IN ({}){})".format(
        _ACTIVE, "" if aoi is None else " AND aoi_id = %(aoi)s"
    )
    evidence = evidence_postgis(conn, alerts=scope, params={"aoi": aoi})
    alert_ids = [r["alert_id"] for r in rows]
    values = corroborated_by(alert_ids, evidence)
    ids = evidence_ids(alert_ids, evidence)
    drought = drought_postgis(
        conn, [(r["alert_id"], r["alert_date"]) for r in rows], scope, {"aoi": aoi}
    )
    new = {
        r["alert_id"]: {
            "corroborated_by": values[r["alert_id"]],
            "evidence_ids": ids[r["alert_id"]],
            "drought_anomaly": drought[r["alert_id"]],
        }
        for r in rows
    }
    changed = [r for r in rows if any(r[k] != v for k, v in new[r["alert_id"]].items())]
    with conn.cursor() as cur:
        if changed:
            cur.executemany(
                "UPDATE alerts SET corroborated_by = %s, evidence_ids = %s, drought_anomaly = %s"
                " WHERE alert_id = %s",
                [(*new[r["alert_id"]].values(), r["alert_id"]) for r in changed],
            )
    conn.commit()
    return CatalogCorroboration(
        values,
        [AlertPublished(**{**row, **new[row["alert_id"]]}) for row in changed],
        ids,
        drought,
    )
