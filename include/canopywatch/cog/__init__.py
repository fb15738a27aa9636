"""Cloud-Optimized GeoTIFFs from raw scenes (GDAL COG driver, rio-cogeo validation), one concern per module.

``profiles`` (the named COG profiles), ``convert`` (bytes or a file -> COG bytes, and
validation), ``scenes`` (one scene in the object store: read ``raw.tif``, write
``cog.tif`` beside it, say so with a SceneConverted message), ``job`` (the Spark job's
library: selection, partitioned conversion, publishing) and ``submit`` (the spark-submit
arguments and environment). The Airflow operator that submits the job with credentials
kept out of logs and templates is ``canopywatch.airflow.cog.CogConvertOperator``.

Nothing heavy is imported here.
"""
