"""How the COG job is submitted: local jars, Spark conf, arguments, environment.

Two ways: with the pending scenes handed over (``scenes_from``, see
``canopywatch.cog.handover``: no jars, ``spark_conf(delta=False)``), as the operator
does, or with the job reading Delta itself (``--jars`` with the Delta/S3A jars and
``spark_conf()``).

Shared by the Airflow operator, the tests and the benchmark, so all three submit the
job the same way. Credentials are never part of the conf or the arguments (which
spark-submit and Airflow print): they travel as ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` in the environment of the spark-submit process, where S3A's
default credential chain and boto3 both find them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from canopywatch.settings import REPO_ROOT, Settings

APPLICATION = REPO_ROOT / "spark" / "cog_convert.py"
S3_REGION = "us-east-1"
# the jar that tells whether `scripts/bootstrap.sh spark` has run
MARKER_JAR_GLOB = "delta-spark_*.jar"


class SparkJarsMissingError(RuntimeError):
    """The Delta/S3A jars are not in ``<home>/lib/spark``."""


def spark_lib_dir(settings: Settings) -> Path:
    return settings.home / "lib" / "spark"


def spark_jars(settings: Settings) -> list[str]:
    """The local jars for ``--jars`` (resolved by ``scripts/bootstrap.sh spark``)."""
    folder = spark_lib_dir(settings)
    jars = sorted(str(p) for p in folder.glob("*.jar"))
    if not any(Path(j).match(MARKER_JAR_GLOB) for j in jars):
        raise SparkJarsMissingError(
            f"no Delta jars in {folder}: run `scripts/bootstrap.sh spark` (or `make install`)"
        )
    return jars


def spark_conf(
    s3_endpoint: str | None, region: str = S3_REGION, *, delta: bool = True
) -> dict[str, str]:
    """The job's Spark conf. ``delta``: Delta on S3A (for the job that reads ``scenes_raw``
    itself; for MinIO when ``s3_endpoint`` is given: path-style, plain HTTP allowed).
    Without it (the scenes handed over, see ``canopywatch.cog.handover``) neither the Delta
    extension nor S3A is set up: the driver reads the hand-over and the executors the
    scenes with boto3, so the session starts without them."""
    conf = {
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
        # Python workers write the COGs; one GDAL thread each, executors give the parallelism
        "spark.executorEnv.GDAL_NUM_THREADS": "1",
    }
    if not delta:
        return conf
    conf |= {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": region,
        # small Delta logs: a few partitions rebuild a snapshot faster than the default 50
        "spark.databricks.delta.snapshotPartitions": "4",
    }
    if s3_endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3_endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            s3_endpoint.startswith("https://")
        ).lower()
    return conf


def job_arguments(
    *,
    lake_root: str,
    s3_endpoint: str | None,
    topic: str,
    kafka_bootstrap: str | None,
    scene_ids: Sequence[str] = (),
    scenes_from: str | None = None,
    profile: str | None = None,
    partitions: int | None = None,
    report: str | Path | None = None,
    region: str = S3_REGION,
) -> list[str]:
    """Arguments of ``spark/cog_convert.py`` (nothing secret). ``scenes_from``: the
    ``s3://`` URI of the hand-over object (``canopywatch.cog.handover``); the job then
    converts its rows and reads no Delta (``scene_ids`` must then be left out)."""
    if scenes_from and scene_ids:
        raise ValueError("scene_ids or scenes_from, not both (the hand-over holds the rows)")
    args = ["--lake", lake_root, "--topic", topic, "--region", region]
    if s3_endpoint:
        args += ["--s3-endpoint", s3_endpoint]
    if kafka_bootstrap:
        args += ["--kafka-bootstrap", kafka_bootstrap]
    else:
        args += ["--no-publish"]
    if scene_ids:
        args += ["--scene-ids", ",".join(scene_ids)]
    if scenes_from:
        args += ["--scenes-from", scenes_from]
    if profile:
        args += ["--profile", profile]
    if partitions:
        args += ["--partitions", str(partitions)]
    if report:
        args += ["--report", str(report)]
    return args


def submit_environment(access_key: str, secret_key: str, region: str = S3_REGION) -> dict[str, str]:
    """Environment of the spark-submit process: S3 credentials and the Python to run."""
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": region,
        # driver and workers run the interpreter that has canopywatch installed
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def spark_submit_argv(
    master: str,
    jars: Sequence[str] | None,
    conf: Mapping[str, str],
    arguments: Sequence[str],
    *,
    application: Path = APPLICATION,
    name: str = "canopywatch-cog-convert",
) -> list[str]:
    """A ``spark-submit`` command line, as SparkSubmitOperator builds it."""
    spark_submit = Path(sys.executable).with_name("spark-submit")
    argv = [str(spark_submit), "--master", master, "--name", name]
    if jars:  # the Delta/S3A jars: only when the job reads Delta itself
        argv += ["--jars", ",".join(jars)]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, str(application), *arguments]
