"""The canopywatch dev kit: what development, tests, the demo and the benchmarks need and
production does not.

* ``cdse_emulator``, ``cdse_world``, ``evalscript``: a local Copernicus Data Space endpoint
  (OAuth, Catalog, STAC and Process APIs) serving simulated scenes.
* ``simulate``: the Sentinel-2 L2A time-series simulator.
* ``platform``: the local platform (PostgreSQL/PostGIS, Kafka, MinIO, the endpoint, Airflow)
  as background processes (``python -m canopywatch_dev.platform up``).
* ``demo``: the ``make demo`` driver.
* ``detection``: scenario evaluation, training tables and comparison methods.
* ``synthetic_catalog``, ``synthetic_raw``: generated catalog rows, Kafka messages and raw
  scenes for tests and benchmarks.

The dev kit imports the product (``canopywatch``); the product never imports the dev kit.
"""
