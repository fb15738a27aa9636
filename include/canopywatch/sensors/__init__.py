"""Ground sensors, patrol GPS tracks and fire hotspots: parsing, checks, publishing.

A reading is a ``canopywatch.messages.SensorReading`` on ``<prefix>.sensor-readings``;
rows that cannot become one go to ``<prefix>.sensor-readings.dlq`` with the reason.
"""
