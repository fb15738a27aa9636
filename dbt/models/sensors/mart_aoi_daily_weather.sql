{{ config(materialized='table', schema='marts', tags=['sensors']) }}
-- Per monitored area (the extent of its catalogued scenes) and UTC day: precipitation
-- (mean over the area's stations of their daily sum), temperature (mean, min, max) and
-- coverage (stations that reported, and the share of their expected hourly readings).
with areas as (
    select aoi_id, st_setsrid(st_extent(footprint), 4326) as geom
    from {{ source('catalog', 'scenes') }}
    group by aoi_id
),

station_days as (
    select
        a.aoi_id,
        s.station_id,
        s.observed_date,
        sum(s.rain_mm) as rain_mm,
        avg(s.temperature_c) as temperature_c,
        min(s.temperature_c) as temperature_min_c,
        max(s.temperature_c) as temperature_max_c,
        count(distinct date_trunc('hour', s.observed_at)) as hours_reported
    from {{ ref('stg_sensors') }} as s
    inner join areas as a on st_intersects(a.geom, s.geom)
    where s.kind = 'weather' and s.out_of_range is null
    group by a.aoi_id, s.station_id, s.observed_date
)

select
    aoi_id,
    observed_date,
    count(*) as stations_reporting,
    avg(rain_mm) as precipitation_mm,
    avg(temperature_c) as temperature_mean_c,
    min(temperature_min_c) as temperature_min_c,
    max(temperature_max_c) as temperature_max_c,
    sum(hours_reported)::double precision / (24 * count(*)) as coverage_share
from station_days
group by aoi_id, observed_date
