{{ config(post_hook="{{ spatial_index('geom') }}") }}
-- Per area and week: alert count, cleared area, confidence, and the alerts' union.
select
    aoi_id,
    alert_week,
    count(*) as alerts,
    count(*) filter (where is_confirmed) as confirmed_alerts,
    round(sum(area_ha)::numeric, 4) as area_ha,
    round(avg(confidence)::numeric, 4) as mean_confidence,
    max(confidence) as max_confidence,
    st_multi(st_union(geom))::geometry(MultiPolygon, 4326) as geom
from {{ ref('stg_alerts') }}
group by aoi_id, alert_week
