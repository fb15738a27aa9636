"""COG conversion throughput: Spark local[1] / local[2] vs a plain loop vs GDAL's COG driver.

    .venv/bin/python benchmarks/cog.py [--scenes 16] [--size 1024] [--profile canopywatch-deflate]

Generates ``--scenes`` raw scenes of the ``s2l2a_bands`` layout (``--size`` px square,
8 uint16 bands with dataMask) on local disk, then converts all of them, file to file,
with:

* ``canopywatch.cog.convert`` in a plain loop in this process;
* the same function in Spark ``local[1]`` and ``local[2]`` (partitions of files spread
  over the executor cores, as ``spark/cog_convert.py`` does with scenes), timed with and
  without the Spark session start-up;
* GDAL's own COG driver (``rasterio.shutil.copy(driver="COG")``, i.e. ``gdal_translate
  -of COG``) with the same compression, predictor, block size and overview resampling,
  one thread; it keeps dataMask as a band instead of turning it into a mask, so it
  does slightly less work.

MB/s counts raw (input) megabytes. Ratios are against GDAL's COG driver. Object store
I/O is left out on purpose: this measures conversion, not MinIO.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from canopywatch.cog.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from canopywatch_dev.synthetic_raw import S2L2A_BANDS, synthetic_raw


@dataclass(frozen=True)
class Run:
    label: str
    scenes: int
    raw_bytes: int
    cog_bytes: int
    seconds: float
    startup_s: float = 0.0

    @property
    def mb_per_s(self) -> float:
        return self.raw_bytes / 1e6 / self.seconds

    @property
    def scenes_per_s(self) -> float:
        return self.scenes / self.seconds


def convert_file(pair: tuple[str, str], profile: str) -> int:
    """raw path -> COG path with canopywatch's converter; returns the COG's size."""
    from canopywatch.cog.convert import convert

    source, target = pair
    data = convert(Path(source), profile=profile, band_names=S2L2A_BANDS)
    Path(target).write_bytes(data)
    return len(data)


def gdal_cog_file(pair: tuple[str, str], profile: str) -> int:
    """raw path -> COG path with GDAL's COG driver, same options, one thread."""
    import rasterio
    from rasterio.shutil import copy

    chosen = get_profile(profile)
    source, target = pair
    with rasterio.Env(GDAL_NUM_THREADS=1, GDAL_PAM_ENABLED=False):
        copy(
            source,
            target,
            driver="COG",
            COMPRESS=chosen.compress,
            LEVEL=chosen.level,
            PREDICTOR="YES",
            BLOCKSIZE=chosen.blocksize,
            OVERVIEWS="IGNORE_EXISTING",
            OVERVIEW_RESAMPLING=chosen.overview_resampling(S2L2A_BANDS).upper(),
            NUM_THREADS=1,
        )
    return Path(target).stat().st_size


def timed_loop(
    label: str, pairs: list[tuple[str, str]], raw_bytes: int, work: Callable[..., int], profile: str
) -> Run:
    started = time.perf_counter()
    cog_bytes = sum(work(pair, profile) for pair in pairs)
    return Run(label, len(pairs), raw_bytes, cog_bytes, time.perf_counter() - started)


def timed_spark(cores: int, pairs: list[tuple[str, str]], raw_bytes: int, profile: str) -> Run:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need canopywatch
    started = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(f"cog-benchmark-{cores}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.executorEnv.GDAL_NUM_THREADS", "1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.parallelize([0], 1).count()  # Python workers up before the clock
    ready = time.perf_counter()

    def convert_partition(part: Iterable[tuple[str, str]]) -> Iterable[int]:
        for pair in part:
            yield convert_file(pair, profile)

    try:
        partitions = min(len(pairs), 2 * cores)
        sizes: list[int] = (
            spark.sparkContext.parallelize(pairs, partitions)
            .mapPartitions(convert_partition)
            .collect()
        )
        cog_bytes = sum(sizes)
        done = time.perf_counter()
    finally:
        spark.stop()
    return Run(
        f"Spark local[{cores}]", len(pairs), raw_bytes, cog_bytes, done - ready, ready - started
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024, help="scene width and height (px)")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory(prefix="cog-bench-") as folder:
        root = Path(folder)
        raws = []
        for index in range(args.scenes):
            path = root / f"raw-{index:03d}.tif"
            path.write_bytes(synthetic_raw(args.size, args.size, seed=index))
            raws.append(path)
        raw_bytes = sum(p.stat().st_size for p in raws)
        console.print(
            f"{args.scenes} raw scenes of {args.size}x{args.size} px x {len(S2L2A_BANDS)} bands "
            f"(uint16), {raw_bytes / 1e6:.1f} MB; profile {args.profile}"
        )

        def pairs(tag: str) -> list[tuple[str, str]]:
            return [(str(p), str(root / f"{tag}-{p.name}")) for p in raws]

        gdal = timed_loop("GDAL COG driver (1 thread)", pairs("gdal"), raw_bytes,
                          gdal_cog_file, args.profile)  # fmt: skip
        console.print(f"  {gdal.label}: {gdal.seconds:.1f} s")
        runs = [timed_loop("plain loop (1 process)", pairs("loop"), raw_bytes,
                           convert_file, args.profile)]  # fmt: skip
        console.print(f"  {runs[-1].label}: {runs[-1].seconds:.1f} s")
        for cores in (1, 2):
            runs.append(timed_spark(cores, pairs(f"spark{cores}"), raw_bytes, args.profile))
            console.print(f"  {runs[-1].label}: {runs[-1].seconds:.1f} s")

    table = Table(title=f"COG conversion, {args.scenes} scenes of {args.size} px ({args.profile})")
    for column in ("method", "seconds", "MB/s", "scenes/s", "x GDAL COG", "COG MB",
                   "start-up s", "MB/s with start-up"):  # fmt: skip
        table.add_column(column, justify="left" if column == "method" else "right")
    for run in [*runs, gdal]:
        with_startup = run.raw_bytes / 1e6 / (run.seconds + run.startup_s)
        table.add_row(
            run.label,
            f"{run.seconds:.2f}",
            f"{run.mb_per_s:.1f}",
            f"{run.scenes_per_s:.2f}",
            f"{run.mb_per_s / gdal.mb_per_s:.2f}",
            f"{run.cog_bytes / 1e6:.1f}",
            f"{run.startup_s:.1f}" if run.startup_s else "-",
            f"{with_startup:.1f}",
        )
    console.print(table)
    console.print(
        "MB/s counts raw input; 'x GDAL COG' is throughput relative to GDAL's COG driver "
        "(>1: faster). Spark rows exclude the session start-up, given apart."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
