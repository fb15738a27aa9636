"""The PostGIS catalog (docs/architecture.md, "PostGIS tables"): schema, sync from Delta, bbox + time queries, STAC."""
