"""The PostGIS ``alerts`` table, built from the alert schema (``canopywatch.alert_schema``).

The columns are the schema's fields (the geometry as ``geom geometry(MultiPolygon, 4326)``)
plus ``geohash``. A table made before ``confidence_level``, ``status`` and ``method``
existed gets them, filled from the score and the model version, the first time the schema
is ensured; the sync fills them the same way for Delta rows written before they existed.
"""

from __future__ import annotations

from canopywatch.alert_schema import (
    ALERT_FIELDS,
    ATTRIBUTE_NAMES,
    CONFIDENCE_LEVELS,
    HIGH_CONFIDENCE,
    STATUSES,
    AlertField,
)

GEOMETRY_COLUMN = "geom"
_SQL_TYPES = {"text": "text", "datetime": "timestamptz", "float": "double precision"}


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_CHECKS = {
    "confidence": "CHECK (confidence BETWEEN 0 AND 1)",
    "area_ha": "CHECK (area_ha >= 0)",
    "confidence_level": f"CHECK (confidence_level IN ({_quoted(CONFIDENCE_LEVELS)}))",
    "status": f"CHECK (status IN ({_quoted(STATUSES)}))",
}
_LEVEL_FROM_SCORE = f"CASE WHEN confidence >= {HIGH_CONFIDENCE} THEN 'high' ELSE 'low' END"
_METHOD_FROM_VERSION = (
    "CASE split_part(model_version, '-', 1) WHEN 'xgb' THEN 'xgboost' "
    "ELSE split_part(model_version, '-', 1) END"
)
# columns added after the first release, and how to fill them for rows that lack them
BACKFILL = {
    "confidence_level": _LEVEL_FROM_SCORE,
    "status": _LEVEL_FROM_SCORE,
    "method": _METHOD_FROM_VERSION,
}


def _column(spec: AlertField) -> str:
    if spec.kind == "geometry":
        return f"{GEOMETRY_COLUMN} geometry(MultiPolygon, 4326) NOT NULL"
    key = " PRIMARY KEY" if spec.name == "alert_id" else ""
    null = " NOT NULL" if spec.required and not key else ""
    check = f" {_CHECKS[spec.name]}" if spec.name in _CHECKS else ""
    return f"{spec.name} {_SQL_TYPES[spec.kind]}{key}{null}{check}"


def _added_column(name: str) -> str:
    spec = next(f for f in ALERT_FIELDS if f.name == name)
    check = f", ADD {_CHECKS[name]}" if name in _CHECKS else ""
    return f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                 AND table_name = 'alerts' AND column_name = '{name}') THEN
    ALTER TABLE alerts ADD COLUMN {name} {_SQL_TYPES[spec.kind]};
    UPDATE alerts SET {name} = {BACKFILL[name]};
    ALTER TABLE alerts ALTER COLUMN {name} SET NOT NULL{check};
  END IF;
END $$;"""


def _optional_column(spec: AlertField) -> str:
    """An optional field added later: a nullable column (old rows hold null)."""
    return f"\nALTER TABLE alerts ADD COLUMN IF NOT EXISTS {spec.name} {_SQL_TYPES[spec.kind]};"


_COLUMNS = ",\n    ".join(
    [_column(f) for f in ALERT_FIELDS if f.kind != "geometry"]
    + ["geohash text NOT NULL"]
    + [_column(f) for f in ALERT_FIELDS if f.kind == "geometry"]
)
DDL = f"""
CREATE TABLE IF NOT EXISTS alerts (
    {_COLUMNS}
);
CREATE INDEX IF NOT EXISTS alerts_geom_gix ON alerts USING gist ({GEOMETRY_COLUMN});
CREATE INDEX IF NOT EXISTS alerts_alert_date_idx ON alerts (alert_date);
{"".join(_added_column(name) for name in BACKFILL)}
{"".join(_optional_column(f) for f in ALERT_FIELDS if not f.required and f.kind != "geometry")}
"""

# the sync's staging table: the Delta columns (geometry as GeoJSON text)
STAGE_COLUMNS: tuple[str, ...] = (*ATTRIBUTE_NAMES, "geohash", "geometry_geojson")
STAGE_DDL = "CREATE TEMP TABLE stage ({}) ON COMMIT DROP".format(
    ", ".join(
        [f"{f.name} {_SQL_TYPES[f.kind]}" for f in ALERT_FIELDS if f.kind != "geometry"]
        + ["geohash text", "geometry_geojson text"]
    )
)
_TARGET_COLUMNS = (*ATTRIBUTE_NAMES, "geohash", GEOMETRY_COLUMN)
# set apart from the detector (canopywatch.sensors.corroboration): a row that arrives
# without it (null: not checked) keeps the stored check
KEPT_WHEN_NULL = ("corroborated_by", "evidence_ids", "drought_anomaly")


def _updated(column: str) -> str:
    if column in KEPT_WHEN_NULL:
        return f"{column} = COALESCE(EXCLUDED.{column}, alerts.{column})"
    return f"{column} = EXCLUDED.{column}"


_SOURCE = [f"COALESCE({c}, {BACKFILL[c]})" if c in BACKFILL else c for c in ATTRIBUTE_NAMES]
UPSERT_SQL = f"""
INSERT INTO alerts ({", ".join(_TARGET_COLUMNS)})
SELECT {", ".join(_SOURCE)}, geohash,
    ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(geometry_geojson), 4326))
FROM stage
ON CONFLICT (alert_id) DO UPDATE SET
    {", ".join(_updated(c) for c in _TARGET_COLUMNS if c != "alert_id")}"""
