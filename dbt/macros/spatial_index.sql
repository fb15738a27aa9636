{#- A GiST index on a geometry column of this model (use as a post-hook). -#}
{% macro spatial_index(column='geom') -%}
create index if not exists "{{ this.identifier }}_{{ column }}_gix" on {{ this }} using gist ("{{ column }}")
{%- endmacro %}
