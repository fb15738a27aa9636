"""Exports for people and GIS tools (GeoPackage)."""
