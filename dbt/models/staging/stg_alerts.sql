-- One row per alert (the alert schema, canopywatch.alert_schema), with the ISO week it
-- falls in and whether it is a deforestation alert (status low or high) or another change.
select
    alert_id,
    aoi_id,
    alert_date,
    date_trunc('week', alert_date at time zone 'UTC')::date as alert_week,
    confirmed_date,
    confirmed_date is not null as is_confirmed,
    confidence,
    confidence_level,
    status,
    status in ('low', 'high') as is_active,
    area_ha,
    method,
    model_version,
    geohash,
    geom::geometry(MultiPolygon, 4326) as geom
from {{ source('catalog', 'alerts') }}
