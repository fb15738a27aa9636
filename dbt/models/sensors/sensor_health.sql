{{ config(materialized='table', schema='marts', tags=['sensors']) }}
-- Per station and kind: last seen, readings, the share of expected hourly readings that
-- are missing (regular kinds: weather, soil moisture), and the share of readings stuck
-- at the value of the two before them (temperature / soil moisture).
with regular as (
    select
        station_id,
        kind,
        observed_at,
        coalesce(temperature_c, soil_moisture_vwc) as value,
        lag(coalesce(temperature_c, soil_moisture_vwc), 1) over w as previous_1,
        lag(coalesce(temperature_c, soil_moisture_vwc), 2) over w as previous_2
    from {{ ref('stg_sensors') }}
    where kind in ('weather', 'soil_moisture')
    window w as (partition by station_id, kind order by observed_at)
),

per_station as (
    select
        station_id,
        kind,
        count(*) as readings,
        min(observed_at) as first_seen,
        max(observed_at) as last_seen,
        count(distinct date_trunc('hour', observed_at)) as hours_seen,
        floor(extract(epoch from max(observed_at) - min(observed_at)) / 3600)::int + 1
            as hours_expected,
        avg(case when value = previous_1 and value = previous_2 then 1.0 else 0.0 end)
            as stuck_share
    from regular
    group by station_id, kind
),

events as (
    select station_id, kind, count(*) as readings, min(observed_at) as first_seen,
        max(observed_at) as last_seen
    from {{ ref('stg_sensors') }}
    where kind in ('acoustic', 'patrol_gps')
    group by station_id, kind
)

select
    station_id,
    kind,
    readings,
    first_seen,
    last_seen,
    greatest(0.0, 1.0 - hours_seen::double precision / hours_expected) as gap_share,
    stuck_share::double precision as stuck_share
from per_station
union all
select station_id, kind, readings, first_seen, last_seen, null::double precision,
    null::double precision
from events
