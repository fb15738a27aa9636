"""The PostGIS catalog (ARCHITECTURE 4.4): schema, sync from Delta, bbox + time queries, STAC."""
