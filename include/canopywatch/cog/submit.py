"""How the COG job is submitted: local jars, Spark conf, arguments, environment.

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


def spark_conf(s3_endpoint: str | None, region: str = S3_REGION) -> dict[str, str]:
    """Delta on S3A, for MinIO when ``s3_endpoint`` is given (path-style, plain HTTP allowed)."""
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": region,
        # small Delta logs: a few partitions rebuild a snapshot faster than the default 50
        "spark.databricks.delta.snapshotPartitions": "4",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
        # Python workers write the COGs; one GDAL thread each, executors give the parallelism
        "spark.executorEnv.GDAL_NUM_THREADS": "1",
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
    profile: str | None = None,
    partitions: int | None = None,
    report: str | Path | None = None,
    region: str = S3_REGION,
) -> list[str]:
    """Arguments of ``spark/cog_convert.py`` (nothing secret)."""
    args = ["--lake", lake_root, "--topic", topic, "--region", region]
    if s3_endpoint:
        args += ["--s3-endpoint", s3_endpoint]
    if kafka_bootstrap:
        args += ["--kafka-bootstrap", kafka_bootstrap]
    else:
        args += ["--no-publish"]
    if scene_ids:
        args += ["--scene-ids", ",".join(scene_ids)]
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
    jars: Sequence[str],
    conf: Mapping[str, str],
    arguments: Sequence[str],
    *,
    application: Path = APPLICATION,
    name: str = "canopywatch-cog-convert",
) -> list[str]:
    """A ``spark-submit`` command line, as SparkSubmitOperator builds it."""
    spark_submit = Path(sys.executable).with_name("spark-submit")
    argv = [str(spark_submit), "--master", master, "--name", name, "--jars", ",".join(jars)]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, str(application), *arguments]
