{{ config(materialized='table', schema='marts', tags=['sensors'],
          post_hook="create index if not exists \"{{ this.identifier }}_alert_idx\" on {{ this }} (alert_id)") }}
-- Sensor evidence per alert, the rules of canopywatch.sensors.evidence (there: RULES) in
-- PostGIS: chainsaws (score >= 0.6) within 1 km in the 14 days up to the alert date,
-- hotspots inside the polygon from 30 days before to 60 after, patrol tracks within 500 m
-- from 30 days before to 30 after (one row per track, its closest fix).
with rules (kind, reading_kind, radius_m, days_before, days_after) as (
    values
        ('acoustic', 'acoustic', 1000.0, 14, 0),
        ('fire', 'fire_hotspot', 0.0, 30, 60),
        ('patrol', 'patrol_gps', 500.0, 30, 30)
),

pairs as (
    select
        a.alert_id,
        r.kind,
        case when r.kind = 'patrol' then s.track_id else s.reading_id end as evidence_id,
        s.station_id,
        s.observed_at,
        st_distance(a.geom::geography, s.geom::geography) as distance_m
    from {{ source('catalog', 'alerts') }} as a
    cross join rules as r
    inner join {{ ref('stg_sensors') }} as s
        on s.kind = r.reading_kind
        and (s.kind <> 'acoustic' or (s.event = 'chainsaw' and s.score >= 0.6))
        and s.observed_at between a.alert_date - make_interval(days => r.days_before)
            and a.alert_date + make_interval(days => r.days_after)
        -- a bounding-box prefilter the GiST index on the points can serve
        and s.geom && st_expand(
            a.geom,
            r.radius_m / (110000.0 * cos(radians(st_y(st_centroid(a.geom))))) + 1e-7,
            r.radius_m / 110000.0 + 1e-7
        )
        and case
            when r.radius_m = 0 then st_intersects(a.geom, s.geom)
            else st_dwithin(a.geom::geography, s.geom::geography, r.radius_m)
        end
    where a.status in ('low', 'high')
)

select distinct on (alert_id, kind, evidence_id)
    alert_id, kind, evidence_id, station_id, observed_at, distance_m
from pairs
order by alert_id, kind, evidence_id, distance_m
