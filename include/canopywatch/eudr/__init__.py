"""EUDR plot checks: was a plot forest at the cut-off (2020-12-31), and deforested since?

``plots`` reads the plots (GeoJSON, GeoPackage or CSV of lat/lon points with an area),
``evidence`` gathers what the checks use (alerts and scenes from PostGIS, the forest
baseline rasters, lineage), ``check`` decides per plot in vectorised passes (shapely 2,
STRtree), ``report`` writes GeoJSON, CSV and a one-page HTML report, and ``jobs`` runs a
check as a job with an id (what ``POST /eudr/checks`` starts).
"""
