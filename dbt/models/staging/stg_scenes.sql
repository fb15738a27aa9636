-- One row per scene: acquisition, cloudiness and the state of its COG.
select
    s.scene_id,
    s.aoi_id,
    s.source,
    s.function,
    s.geohash,
    s.acquired_at,
    date_trunc('month', s.acquired_at at time zone 'UTC')::date as acquired_month,
    s.cloud_cover,
    s.cloud_cover is not null
        and s.cloud_cover <= {{ var('clear_max_cloud') }} as is_clear,
    s.width,
    s.height,
    s.bucket,
    s.raw_key,
    c.cog_key,
    case
        when c.scene_id is null then 'missing'
        when c.valid then 'valid'
        else 'invalid'
    end as cog_status,
    s.footprint::geometry(Polygon, 4326) as footprint
from {{ source('catalog', 'scenes') }} as s
left join {{ source('catalog', 'scene_cogs') }} as c using (scene_id)
