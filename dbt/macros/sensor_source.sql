{#-
  The source table of the sensor models, created empty when the sync has not run yet
  (so `dbt build` works on any catalog). The same table as
  canopywatch.sensors.catalog.DDL (a unit test keeps the two column lists equal).
-#}
{% macro ensure_sensor_source() -%}
{%- set schema = env_var('CANOPYWATCH_PG_SCHEMA', 'public') -%}
create schema if not exists "{{ schema }}";
create table if not exists "{{ schema }}".sensor_readings (
    reading_id text not null,
    station_id text not null,
    kind text not null,
    observed_at timestamptz not null,
    lon double precision not null,
    lat double precision not null,
    source text,
    rain_mm double precision,
    temperature_c double precision,
    humidity_pct double precision,
    soil_moisture_pct double precision,
    event text,
    score double precision,
    track_id text,
    frp_mw double precision,
    fire_confidence text,
    brightness_k double precision,
    instrument text,
    satellite text,
    daynight text,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    kafka_timestamp timestamptz,
    ingested_at timestamptz not null,
    geom geometry(Point, 4326) generated always as (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) stored,
    primary key (kafka_partition, kafka_offset)
)
{%- endmacro %}
