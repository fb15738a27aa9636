{{ config(post_hook="{{ spatial_index('coverage') }}") }}
-- Per area and month: how many scenes, how many clear ones, how cloudy, what they covered.
select
    aoi_id,
    acquired_month,
    count(*) as scenes,
    count(*) filter (where is_clear) as clear_observations,
    round(avg(cloud_cover)::numeric, 2) as mean_cloud_cover,
    min(cloud_cover) as min_cloud_cover,
    max(cloud_cover) as max_cloud_cover,
    count(*) filter (where cog_status = 'valid') as scenes_with_cog,
    max(acquired_at) as last_acquired_at,
    st_multi(st_union(footprint))::geometry(MultiPolygon, 4326) as coverage
from {{ ref('stg_scenes') }}
group by aoi_id, acquired_month
