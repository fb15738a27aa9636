{{ config(materialized='table', schema='marts', tags=['sensors']) }}
-- Each active alert with the sensor evidence that corroborates it (corroborated_by: the
-- kinds, evidence_ids: what), a confidence raised by 0.1 per corroborating kind (at most
-- 1), and the dry spell it fell in, if any, so an analyst can tell a drought-browned
-- canopy from a clearing. The dry spell is the alert's own drought_anomaly, computed once
-- by the product (canopywatch.sensors.drought: the 30-day rain of the stations within
-- 25 km against their own record, an SPI-style z); this model only reads it.
with evidence as (
    select
        alert_id,
        array_agg(distinct kind order by kind) as corroborated_by,
        array_agg(evidence_id order by kind, evidence_id) as evidence_ids
    from {{ ref('alert_evidence') }}
    group by alert_id
),

alerts as (
    select
        alert_id,
        aoi_id,
        alert_date,
        confidence,
        status,
        nullif(drought_anomaly, '')::jsonb as drought
    from {{ source('catalog', 'alerts') }}
    where status in ('low', 'high')
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
    a.drought ->> 'flag' as drought_flag,
    (a.drought ->> 'value')::double precision as drought_z,
    (a.drought ->> 'precip_mm')::double precision as rain_30d_mm,
    (a.drought ->> 'normal_mm')::double precision as rain_30d_normal_mm,
    case
        when a.drought ->> 'flag' is not null
            then replace(a.drought ->> 'flag', '_', ' ') || ': 30-day rain '
                || round((a.drought ->> 'precip_mm')::numeric, 1) || ' mm vs normal '
                || round((a.drought ->> 'normal_mm')::numeric, 1) || ' mm (z '
                || round((a.drought ->> 'value')::numeric, 2) || ')'
    end as drought_note
from alerts as a
left join evidence as e using (alert_id)
