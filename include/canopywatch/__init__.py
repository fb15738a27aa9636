"""canopywatch: forest monitoring from Sentinel-2, orchestrated by Apache Airflow."""

__version__ = "0.1.0"
