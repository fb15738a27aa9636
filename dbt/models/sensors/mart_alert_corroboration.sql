{{ config(materialized='table', schema='marts', tags=['sensors']) }}
-- Each active alert with the sensor evidence that corroborates it (corroborated_by: the
-- kinds, evidence_ids: what), a confidence raised by 0.1 per corroborating kind (at most
-- 1), and for alerts raised in the leaf-off / dry season (June-October here) the rain of
-- the 30 days before against the area's stations' normal, so an analyst can tell a
-- drought-browned canopy from a clearing.
with evidence as (
    select
        alert_id,
        array_agg(distinct kind order by kind) as corroborated_by,
        array_agg(evidence_id order by kind, evidence_id) as evidence_ids
    from {{ ref('alert_evidence') }}
    group by alert_id
),

daily_rain as (
    select observed_date, avg(day_rain) as rain_mm
    from (
        select station_id, observed_date, sum(rain_mm) as day_rain
        from {{ ref('stg_sensors') }}
        where kind = 'weather' and out_of_range is null
        group by station_id, observed_date
    ) as per_station
    group by observed_date
),

normal as (
    select avg(rain_mm) * 30 as rain_30d_normal_mm from daily_rain
),

alerts as (
    select
        a.alert_id,
        a.aoi_id,
        a.alert_date,
        a.confidence,
        a.status,
        extract(month from a.alert_date at time zone 'UTC') between 6 and 10 as leaf_off,
        (
            select sum(d.rain_mm) from daily_rain as d
            where d.observed_date > (a.alert_date at time zone 'UTC')::date - 30
                and d.observed_date <= (a.alert_date at time zone 'UTC')::date
        ) as rain_30d_mm
    from {{ source('catalog', 'alerts') }} as a
    where a.status in ('low', 'high')
)

select
    a.alert_id,
    a.aoi_id,
    a.alert_date,
    a.status,
    a.confidence,
    coalesce(e.corroborated_by, array[]::text[]) as corroborated_by,
    coalesce(e.evidence_ids, array[]::text[]) as evidence_ids,
    least(1.0, a.confidence + 0.1 * coalesce(cardinality(e.corroborated_by), 0))
        as corroborated_confidence,
    a.leaf_off,
    a.rain_30d_mm,
    n.rain_30d_normal_mm,
    case
        when a.leaf_off and a.rain_30d_mm < 0.5 * n.rain_30d_normal_mm
            then 'leaf-off alert during a drought: 30-day rain '
                || round(a.rain_30d_mm::numeric, 1) || ' mm vs normal '
                || round(n.rain_30d_normal_mm::numeric, 1) || ' mm'
    end as drought_note
from alerts as a
left join evidence as e using (alert_id)
cross join normal as n
