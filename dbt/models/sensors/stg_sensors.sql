{{ config(materialized='view', schema='staging', tags=['sensors']) }}
-- One row per reading: resends removed (the first copy the broker got is kept), units
-- normalised to fractions and Kelvin beside the raw values, implausible values flagged
-- (plausible for a lowland tropical station; flagged, not dropped, so sensor_health sees them).
with ranked as (
    select
        r.*,
        row_number() over (
            partition by r.reading_id
            order by r.kafka_timestamp, r.kafka_partition, r.kafka_offset
        ) as copy_number,
        count(*) over (partition by r.reading_id) - 1 as resends
    from {{ source('sensors', 'sensor_readings') }} as r
)

select
    reading_id,
    station_id,
    kind,
    source,
    observed_at,
    (observed_at at time zone 'UTC')::date as observed_date,
    extract(epoch from kafka_timestamp - observed_at)::double precision as delivery_delay_s,
    lon,
    lat,
    geom::geometry(Point, 4326) as geom,
    rain_mm,
    temperature_c,
    temperature_c + 273.15 as temperature_k,
    humidity_pct / 100.0 as relative_humidity,
    soil_moisture_pct / 100.0 as soil_moisture_vwc,
    event,
    score,
    track_id,
    frp_mw,
    fire_confidence,
    brightness_k,
    instrument,
    satellite,
    case
        when kind = 'weather' and temperature_c not between {{ var('sensor_min_temperature_c') }}
            and {{ var('sensor_max_temperature_c') }} then 'temperature'
        when kind = 'weather' and humidity_pct < {{ var('sensor_min_humidity_pct') }} then 'humidity'
        when kind = 'weather' and rain_mm > {{ var('sensor_max_rain_mm') }} then 'rain'
        when kind = 'soil_moisture' and soil_moisture_pct not between 1 and 60 then 'soil_moisture'
        when kind = 'acoustic' and score < 0.5 then 'low_score'
    end as out_of_range,
    resends
from ranked
where copy_number = 1
