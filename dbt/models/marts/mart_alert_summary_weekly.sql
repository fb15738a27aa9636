{{ config(post_hook="{{ spatial_index('geom') }}") }}
-- Per area and week: deforestation alert count (status low or high; withdrawn alerts and
-- plantation harvests are left out), cleared area, confidence, and the alerts' union.
select
    aoi_id,
    alert_week,
    count(*) as alerts,
    count(*) filter (where is_confirmed) as confirmed_alerts,
    count(*) filter (where confidence_level = 'high') as high_confidence_alerts,
    round(sum(area_ha)::numeric, 4) as area_ha,
    round(avg(confidence)::numeric, 4) as mean_confidence,
    max(confidence) as max_confidence,
    st_multi(st_union(geom))::geometry(MultiPolygon, 4326) as geom
from {{ ref('stg_alerts') }}
where is_active
group by aoi_id, alert_week
