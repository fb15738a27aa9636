"""Sensor evidence for alerts: which ground observations corroborate a deforestation alert.

The rules (one definition, used by the Spark job, the geopandas path and the PostGIS
reference, which the dbt model ``alert_evidence`` mirrors through the project's vars):

* ``acoustic``: a chainsaw heard (score >= 0.6) within 1 km of the alert polygon in the
  14 days up to the alert date;
* ``fire``: an active-fire hotspot inside the alert polygon from 30 days before to 60
  days after the alert date (slash-and-burn follows the cut);
* ``patrol``: a patrol track that passed within 500 m of the polygon from 30 days before
  to 30 days after the alert date (one row per track, at its closest fix).

Distances are metres on the ground: geodesic in PostGIS (geography), in a local
equirectangular frame around each alert in Spark and geopandas (WGS 84 degree lengths at the
alert's centre; within a metre of PostGIS at these ranges). Output columns: ``EVIDENCE_COLUMNS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# at run time too: Spark reads the pandas UDF's type hints (pd.Series) from this module
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class Rule:
    kind: str  # evidence kind
    reading_kind: str
    radius_m: float  # 0: inside the polygon
    days_before: int
    days_after: int


RULES: tuple[Rule, ...] = (
    Rule("acoustic", "acoustic", 1000.0, 14, 0),
    Rule("fire", "fire_hotspot", 0.0, 30, 60),
    Rule("patrol", "patrol_gps", 500.0, 30, 30),
)
CHAINSAW_MIN_SCORE = 0.6
EVIDENCE_COLUMNS = ("alert_id", "kind", "evidence_id", "station_id", "observed_at", "distance_m")
EARTH_M_PER_DEG = 111_320.0
PAD_M_PER_DEG = 110_000.0  # for search pads: under the true length of a degree
# Spark's grid join: a cell of 0.02 degrees (~2.2 km) holds a 1 km reach in one ring
CELL_DEG = 0.02


def eligible(readings: pd.DataFrame) -> pd.DataFrame:
    """The readings that can be evidence at all (chainsaws, hotspots, patrol fixes)."""
    kinds = {r.reading_kind for r in RULES}
    mask = readings["kind"].isin(kinds) & (
        (readings["kind"] != "acoustic")
        | ((readings["event"] == "chainsaw") & (readings["score"] >= CHAINSAW_MIN_SCORE))
    )
    return readings[mask]


def _local_metres(lon: Any, lat: Any, lon0: Any, lat0: Any) -> tuple[Any, Any]:
    """East and north metres from (lon0, lat0): the WGS 84 lengths of a degree there."""
    import numpy as np

    phi = np.radians(lat0)
    per_lat = 111_132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    per_lon = 111_412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi) + 0.118 * np.cos(5 * phi)
    return (lon - lon0) * per_lon, (lat - lat0) * per_lat


def pair_distances(geometries: Any, lon: Any, lat: Any, keys: Any = None) -> Any:
    """Metres from each point to its polygon (0 inside), in a frame at the polygon's centre.

    ``keys`` (same length): equal keys mark the same polygon, projected once; default:
    the polygons' WKB.
    """
    import numpy as np
    import pandas as pd
    import shapely

    geometries = np.asarray(geometries, dtype=object)
    codes, _ = pd.factorize(
        pd.Series(shapely.to_wkb(geometries) if keys is None else np.asarray(keys))
    )
    unique_index = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    unique = geometries[unique_index]
    centres = shapely.centroid(unique)
    lon0, lat0 = shapely.get_x(centres), shapely.get_y(centres)

    def to_local(coords: Any, lon0_row: float, lat0_row: float) -> Any:
        x, y = _local_metres(coords[:, 0], coords[:, 1], lon0_row, lat0_row)
        return np.column_stack([x, y])

    projected = np.array(
        [
            shapely.transform(g, lambda c, a=a, b=b: to_local(c, a, b))
            for g, a, b in zip(unique, lon0, lat0, strict=True)
        ],
        dtype=object,
    )
    x, y = _local_metres(np.asarray(lon), np.asarray(lat), lon0[codes], lat0[codes])
    return shapely.distance(projected[codes], shapely.points(x, y))


def evidence_geopandas(alerts: pd.DataFrame, readings: pd.DataFrame) -> pd.DataFrame:
    """``alerts``: alert_id, alert_date, geometry (shapely, EPSG:4326); ``readings``: the
    sensor_raw columns. A bounding-box sjoin (geopandas' STRtree) then the exact rules."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    candidates = eligible(readings)
    points = gpd.GeoDataFrame(
        candidates, geometry=gpd.points_from_xy(candidates["lon"], candidates["lat"]), crs=4326
    )
    geometries = np.asarray(alerts["geometry"].values)
    minx, miny, maxx, maxy = shapely.bounds(geometries).T
    pad_lon, pad_lat = reach_degrees(np.maximum(np.abs(miny), np.abs(maxy)))
    boxes = shapely.box(minx - pad_lon, miny - pad_lat, maxx + pad_lon, maxy + pad_lat)
    areas = gpd.GeoDataFrame(
        {"alert_id": alerts["alert_id"].values, "alert_date": alerts["alert_date"].values,
         "polygon": geometries},
        geometry=boxes, crs=4326,
    )  # fmt: skip
    joined = gpd.sjoin(points, areas, predicate="within", how="inner")
    if joined.empty:
        return pd.DataFrame(columns=list(EVIDENCE_COLUMNS))
    joined["distance_m"] = pair_distances(
        joined["polygon"].values,
        joined["lon"].values,
        joined["lat"].values,
        keys=joined["index_right"].values,
    )
    return _apply_rules(joined)


def _apply_rules(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs (alert, reading, distance_m) -> evidence rows by the rules."""
    import pandas as pd

    out = []
    observed = pd.to_datetime(pairs["observed_at"], utc=True)
    days = (observed - pd.to_datetime(pairs["alert_date"], utc=True)).dt.total_seconds() / 86400.0
    for rule in RULES:
        keep = (
            (pairs["kind"] == rule.reading_kind)
            & (pairs["distance_m"] <= rule.radius_m + 1e-6)
            & (days >= -rule.days_before)
            & (days <= rule.days_after)
        )
        chosen = pairs[keep].copy()
        chosen["evidence_id"] = (
            chosen["track_id"] if rule.kind == "patrol" else chosen["reading_id"]
        )
        if rule.kind == "patrol":  # one row per track: its closest fix
            chosen = chosen.sort_values("distance_m").drop_duplicates(["alert_id", "evidence_id"])
        chosen["kind"] = rule.kind
        out.append(chosen[list(EVIDENCE_COLUMNS)])
    result = pd.concat(out, ignore_index=True)
    return result.sort_values(["alert_id", "kind", "evidence_id"]).reset_index(drop=True)


POSTGIS_SQL = """
WITH rules(kind, reading_kind, radius_m, days_before, days_after) AS (
    VALUES ('acoustic', 'acoustic', 1000.0, 14, 0), ('fire', 'fire_hotspot', 0.0, 30, 60),
           ('patrol', 'patrol_gps', 500.0, 30, 30)
), pairs AS (
    SELECT a.alert_id, r.kind, s.reading_id, s.track_id, s.station_id, s.observed_at,
           ST_Distance(a.geom::geography, s.geom::geography) AS distance_m
    FROM {alerts} AS a
    JOIN rules AS r ON true
    JOIN {readings} AS s
      ON s.kind = r.reading_kind
     AND (s.kind <> 'acoustic' OR (s.event = 'chainsaw' AND s.score >= %(min_score)s))
     AND s.observed_at BETWEEN a.alert_date - make_interval(days => r.days_before)
                           AND a.alert_date + make_interval(days => r.days_after)
     -- a bounding-box prefilter the GiST index on the points can serve
     AND s.geom && ST_Expand(
            a.geom,
            r.radius_m / (110000.0 * cos(radians(ST_Y(ST_Centroid(a.geom))))) + 1e-7,
            r.radius_m / 110000.0 + 1e-7)
     AND CASE WHEN r.radius_m = 0 THEN ST_Intersects(a.geom, s.geom)
              ELSE ST_DWithin(a.geom::geography, s.geom::geography, r.radius_m) END
)
SELECT DISTINCT ON (alert_id, kind, evidence_id)
       alert_id, kind, CASE WHEN kind = 'patrol' THEN track_id ELSE reading_id END AS evidence_id,
       station_id, observed_at, distance_m
FROM pairs
ORDER BY alert_id, kind, evidence_id, distance_m
"""


def evidence_postgis(
    conn: Any,
    alerts: str = "alerts",
    readings: str = "sensor_readings",
    params: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The rules in PostGIS (GiST-indexed ``ST_DWithin`` on geography): the reference.

    ``alerts``: a table or a parenthesised subquery (alert_id, alert_date, geom) whose
    ``%(name)s`` placeholders ``params`` fills."""
    import pandas as pd

    query = POSTGIS_SQL.format(alerts=alerts, readings=readings)
    with conn.cursor() as cur:
        cur.execute(query, {**(params or {}), "min_score": CHAINSAW_MIN_SCORE})
        rows = cur.fetchall()
    return pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))


def evidence_spark(spark: SparkSession, alerts: DataFrame, readings: DataFrame) -> DataFrame:
    """The rules in Spark: an equi-join on 0.02-degree grid cells (each alert's bounding box
    widened by the reach, exploded into cells), then the exact distance in a pandas UDF.

    ``alerts``: alert_id, alert_date (timestamp), geometry_wkt; ``readings``: sensor_raw.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.functions import pandas_udf
    from pyspark.sql.types import DoubleType

    @pandas_udf(DoubleType())  # type: ignore[call-overload, untyped-decorator, unused-ignore]
    def distance_m(wkt: pd.Series, lon: pd.Series, lat: pd.Series) -> pd.Series:
        import numpy as np
        import pandas as pd
        import shapely

        codes, uniques = pd.factorize(wkt)
        polygons = shapely.from_wkt(np.asarray(uniques, dtype=object))[codes]
        return pd.Series(pair_distances(polygons, lon.values, lat.values, keys=codes))

    reach = max(r.radius_m for r in RULES)
    lat_pad = reach / PAD_M_PER_DEG
    cells = (
        alerts.select(
            "alert_id",
            "alert_date",
            "geometry_wkt",
            F.col("min_lon"),
            F.col("min_lat"),
            F.col("max_lon"),
            F.col("max_lat"),
        )
        .select(
            "*",
            F.explode(
                F.sequence(
                    F.floor(
                        (F.col("min_lon") - F.lit(lat_pad) / F.cos(F.radians("min_lat"))) / CELL_DEG
                    ),
                    F.floor(
                        (F.col("max_lon") + F.lit(lat_pad) / F.cos(F.radians("max_lat"))) / CELL_DEG
                    ),
                )
            ).alias("cx"),
        )
        .select(
            "*",
            F.explode(
                F.sequence(
                    F.floor((F.col("min_lat") - lat_pad) / CELL_DEG),
                    F.floor((F.col("max_lat") + lat_pad) / CELL_DEG),
                )
            ).alias("cy"),
        )
    )
    points = (
        readings.filter(
            F.col("kind").isin([r.reading_kind for r in RULES])
            & (
                (F.col("kind") != "acoustic")
                | ((F.col("event") == "chainsaw") & (F.col("score") >= CHAINSAW_MIN_SCORE))
            )
        )
        .select(
            "reading_id", "station_id", "kind", "track_id", "observed_at", "lon", "lat",
            F.floor(F.col("lon") / CELL_DEG).alias("cx"),
            F.floor(F.col("lat") / CELL_DEG).alias("cy"),
        )
    )  # fmt: skip
    pairs = cells.join(points, ["cx", "cy"]).withColumn(
        "days", (F.unix_timestamp("observed_at") - F.unix_timestamp("alert_date")) / 86400.0
    )
    conditions = []
    for rule in RULES:
        conditions.append(
            (F.col("kind") == rule.reading_kind)
            & (F.col("days") >= -rule.days_before)
            & (F.col("days") <= rule.days_after)
        )
    in_time = conditions[0] | conditions[1] | conditions[2]
    pairs = pairs.filter(in_time).withColumn("distance_m", distance_m("geometry_wkt", "lon", "lat"))
    radius = F.lit(None).cast("double")
    kind = F.lit(None).cast("string")
    for rule in RULES:
        radius = F.when(F.col("kind") == rule.reading_kind, F.lit(rule.radius_m)).otherwise(radius)
        kind = F.when(F.col("kind") == rule.reading_kind, F.lit(rule.kind)).otherwise(kind)
    kept = pairs.filter(F.col("distance_m") <= radius + F.lit(1e-6)).select(
        "alert_id",
        kind.alias("evidence_kind"),
        F.when(F.col("kind") == "patrol_gps", F.col("track_id"))
        .otherwise(F.col("reading_id"))
        .alias("evidence_id"),
        "station_id",
        "observed_at",
        "distance_m",
    )
    from pyspark.sql import Window

    closest = Window.partitionBy("alert_id", "evidence_kind", "evidence_id").orderBy("distance_m")
    return (
        kept.withColumn("rank", F.row_number().over(closest))
        .filter(F.col("rank") == 1)
        .drop("rank")
        .withColumnRenamed("evidence_kind", "kind")
    )


def reach_degrees(lat: Any) -> tuple[Any, Any]:
    """The longest rule's reach in degrees of longitude (at ``lat``) and latitude."""
    import numpy as np

    # 110 km: shorter than any degree of latitude (and than a degree of longitude at the
    # equator), so the pad always covers the reach
    reach = max(r.radius_m for r in RULES)
    return reach / (PAD_M_PER_DEG * np.cos(np.radians(lat))), reach / PAD_M_PER_DEG
