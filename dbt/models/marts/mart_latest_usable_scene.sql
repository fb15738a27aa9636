{{ config(post_hook="{{ spatial_index('footprint') }}") }}
-- Per area: the most recent scene with a valid COG and cloud cover at or under usable_max_cloud.
select distinct on (aoi_id)
    aoi_id,
    scene_id,
    acquired_at,
    cloud_cover,
    bucket,
    cog_key,
    footprint::geometry(Polygon, 4326) as footprint
from {{ ref('stg_scenes') }}
where cog_status = 'valid'
  and cloud_cover is not null
  and cloud_cover <= {{ var('usable_max_cloud') }}
order by aoi_id, acquired_at desc, scene_id
