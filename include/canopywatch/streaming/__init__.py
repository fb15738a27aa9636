"""Spark Structured Streaming: Kafka topics into raw Delta tables, exactly once.

``jobs`` holds the streams (``sensor_raw`` from ``<prefix>.sensor-readings``,
``satellite_raw`` from ``<prefix>.scenes-downloaded``); ``submit`` builds the
spark-submit command of ``spark/stream_ingest.py`` for the operator and the tests.
"""
