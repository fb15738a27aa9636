-- One row per alert, with the ISO week it falls in.
select
    alert_id,
    aoi_id,
    alert_date,
    date_trunc('week', alert_date at time zone 'UTC')::date as alert_week,
    confirmed_date,
    confirmed_date is not null as is_confirmed,
    confidence,
    area_ha,
    model_version,
    geohash,
    geom::geometry(MultiPolygon, 4326) as geom
from {{ source('catalog', 'alerts') }}
