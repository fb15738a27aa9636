"""COG conversion throughput: Spark local[1] / local[2] vs a plain loop vs GDAL's COG driver.

    .venv/bin/python benchmarks/cog.py [--scenes 16] [--size 1024] [--profile canopywatch-deflate]
                                       [--repeat 3] [--quick] [--json OUT]

Generates ``--scenes`` raw scenes of the ``s2l2a_bands`` layout (``--size`` px square,
8 uint16 bands with dataMask) on local disk, then converts all of them, file to file,
with:

* ``canopywatch.cog.convert`` in a plain loop in this process, with one GDAL thread
  (``GDAL_NUM_THREADS=1``) and with the converter's default (all cores);
* the same function in Spark ``local[1]`` and ``local[2]`` (partitions of files spread
  over the executor cores, as ``spark/cog_convert.py`` does with scenes, one GDAL thread
  per executor as ``canopywatch.cog.submit`` sets), timed with and without the Spark
  session start-up;
* GDAL's own COG driver (``rasterio.shutil.copy(driver="COG")``, i.e. ``gdal_translate
  -of COG``) with the same compression, predictor, block size and overview resampling,
  one thread (``gdal_translate``'s default); it keeps dataMask as an 8th band instead
  of turning it into nodata, and picks (NEAREST) every band's overviews where canopywatch
  averages the reflectance bands: it compresses one band more but resamples less.

Every method runs ``--repeat`` times in turn (GDAL, loop, loop all cores, Spark ...,
then again) and its fastest run counts, so load from other work on the machine weighs
on all methods alike. MB/s counts raw (input) megabytes; ``ratio_vs_gdal`` is the
throughput relative to GDAL's COG driver (> 1: faster). Object store I/O is left out on
purpose: this measures conversion, not MinIO. ``--quick``: 8 scenes of 1024 px, 2 repeats.
``--json OUT`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
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

GDAL_LABEL = "GDAL COG driver (1 thread)"


@dataclass(frozen=True)
class Run:
    label: str
    scenes: int
    raw_bytes: int
    cog_bytes: int
    seconds: float
    startup_s: float = 0.0
    valid: bool = True
    cpu_s: float = 0.0  # CPU seconds the conversions took (all threads, all workers)

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


def convert_file_one_thread(pair: tuple[str, str], profile: str) -> int:
    """``convert_file`` with GDAL_NUM_THREADS=1, as on a Spark executor."""
    previous = os.environ.get("GDAL_NUM_THREADS")
    os.environ["GDAL_NUM_THREADS"] = "1"
    try:
        return convert_file(pair, profile)
    finally:
        if previous is None:
            del os.environ["GDAL_NUM_THREADS"]
        else:
            os.environ["GDAL_NUM_THREADS"] = previous


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


def all_valid(targets: Iterable[str]) -> bool:
    from canopywatch.cog.convert import validate

    return all(validate(Path(t)).valid for t in targets)


def timed_loop(
    label: str, pairs: list[tuple[str, str]], raw_bytes: int, work: Callable[..., int], profile: str
) -> Run:
    started, cpu = time.perf_counter(), time.process_time()
    cog_bytes = sum(work(pair, profile) for pair in pairs)
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    valid = all_valid(t for _, t in pairs)
    return Run(label, len(pairs), raw_bytes, cog_bytes, seconds, 0.0, valid, cpu_s)


def _import_converter(n: int) -> int:
    import canopywatch.cog.convert  # noqa: F401

    return n


class SparkRunner:
    """A Spark session of ``cores`` cores, its start-up timed apart from the conversions."""

    def __init__(self, cores: int) -> None:
        from pyspark.sql import SparkSession

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need canopywatch
        started = time.perf_counter()
        self.cores = cores
        self.spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .appName(f"cog-benchmark-{cores}")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.executorEnv.GDAL_NUM_THREADS", "1")
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")
        master = self.spark.sparkContext.master
        if master != f"local[{cores}]":
            raise RuntimeError(f"asked for local[{cores}], got a session on {master}")
        # Python workers up, with the converter imported, before the clock
        self.spark.sparkContext.parallelize(range(cores), cores).map(_import_converter).count()
        self.startup_s = time.perf_counter() - started

    def run(self, pairs: list[tuple[str, str]], raw_bytes: int, profile: str) -> Run:
        def convert_partition(part: Iterable[tuple[str, str]]) -> Iterable[tuple[int, float]]:
            for pair in part:
                cpu = time.process_time()
                size = convert_file_one_thread(pair, profile)
                yield size, time.process_time() - cpu

        started = time.perf_counter()
        partitions = min(len(pairs), 2 * self.cores)
        outcomes: list[tuple[int, float]] = (
            self.spark.sparkContext.parallelize(pairs, partitions)
            .mapPartitions(convert_partition)
            .collect()
        )
        seconds = time.perf_counter() - started
        label = f"Spark local[{self.cores}]"
        valid = all_valid(t for _, t in pairs)
        size, cpu_s = sum(o[0] for o in outcomes), sum(o[1] for o in outcomes)
        return Run(label, len(pairs), raw_bytes, size, seconds, self.startup_s, valid, cpu_s)

    def stop(self) -> None:
        self.spark.stop()
        # a new local session in this process needs the old one gone
        from pyspark import SparkContext

        SparkContext._active_spark_context = None  # type: ignore[attr-defined]


def fastest(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024, help="scene width and height (px)")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    parser.add_argument("--repeat", type=int, default=3, help="runs per method, fastest counts")
    parser.add_argument("--quick", action="store_true", help="8 scenes, 2 repeats")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.scenes, args.repeat = 8, 2
    if args.scenes < 1 or args.size < 64 or args.repeat < 1:
        print("cog.py: --scenes >= 1, --size >= 64 and --repeat >= 1", file=sys.stderr)
        return 2
    console = Console(width=160)

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
            f"(uint16), {raw_bytes / 1e6:.1f} MB; profile {args.profile}; "
            f"{os.cpu_count()} cores; {args.repeat} runs per method, the fastest counts"
        )

        def pairs(tag: str) -> list[tuple[str, str]]:
            return [(str(p), str(root / f"{tag}-{p.name}")) for p in raws]

        loops: list[tuple[str, str, Callable[..., int]]] = [
            (GDAL_LABEL, "gdal", gdal_cog_file),
            ("plain loop (1 process, 1 GDAL thread)", "loop1", convert_file_one_thread),
            ("plain loop (1 process, all cores)", "loop", convert_file),
        ]
        results: dict[str, list[Run]] = {}
        for attempt in range(args.repeat):
            for label, tag, work in loops:
                run = timed_loop(label, pairs(tag), raw_bytes, work, args.profile)
                results.setdefault(label, []).append(run)
                console.print(f"  [{attempt + 1}] {label}: {run.seconds:.2f} s")
            for cores in (1, 2):
                # one session at a time: getOrCreate would hand local[2] the local[1] context
                runner = SparkRunner(cores)
                try:
                    run = runner.run(pairs(f"spark{cores}"), raw_bytes, args.profile)
                finally:
                    runner.stop()
                results.setdefault(run.label, []).append(run)
                console.print(f"  [{attempt + 1}] {run.label}: {run.seconds:.2f} s")

    best = {label: fastest(runs) for label, runs in results.items()}
    gdal = best[GDAL_LABEL]
    order = [label for label in best if label != GDAL_LABEL] + [GDAL_LABEL]
    table = Table(title=f"COG conversion, {args.scenes} scenes of {args.size} px ({args.profile})")
    for column in ("method", "seconds", "MB/s", "x GDAL COG", "CPU s", "x GDAL CPU", "COG MB",
                   "valid", "start-up s", "MB/s with start-up"):  # fmt: skip
        table.add_column(column, justify="left" if column == "method" else "right")
    figures = []
    for label in order:
        run = best[label]
        with_startup = run.raw_bytes / 1e6 / (run.seconds + run.startup_s)
        ratio = run.mb_per_s / gdal.mb_per_s
        table.add_row(
            run.label,
            f"{run.seconds:.2f}",
            f"{run.mb_per_s:.1f}",
            f"{ratio:.2f}",
            f"{run.cpu_s:.2f}",
            f"{gdal.cpu_s / run.cpu_s:.2f}" if run.cpu_s else "-",
            f"{run.cog_bytes / 1e6:.1f}",
            "yes" if run.valid else "NO",
            f"{run.startup_s:.1f}" if run.startup_s else "-",
            f"{with_startup:.1f}",
        )
        figures.append(
            {
                "method": run.label,
                "seconds": round(run.seconds, 3),
                "all_seconds": [round(r.seconds, 3) for r in results[label]],
                "mb_per_s": round(run.mb_per_s, 2),
                "scenes_per_s": round(run.scenes_per_s, 3),
                "ratio_vs_gdal": round(ratio, 3),
                "cpu_s": round(run.cpu_s, 3),
                # raw MB per CPU second relative to GDAL's: the cost, whatever else ran
                "cpu_ratio_vs_gdal": round(gdal.cpu_s / run.cpu_s, 3) if run.cpu_s else None,
                "cog_bytes": run.cog_bytes,
                "valid": run.valid,
                "startup_s": round(run.startup_s, 2),
            }
        )
    console.print(table)
    console.print(
        "MB/s counts raw input; 'x GDAL COG' is throughput relative to GDAL's COG driver "
        "(>1: faster); 'x GDAL CPU' the same per CPU second (what the conversion costs, "
        "whatever else loads the machine). Spark rows exclude the session start-up, given apart."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "cog",
                    "scenes": args.scenes,
                    "size_px": args.size,
                    "raw_bytes": raw_bytes,
                    "profile": args.profile,
                    "repeat": args.repeat,
                    "cpu_count": os.cpu_count(),
                    "load_average": list(os.getloadavg()),
                    "methods": figures,
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if all(r.valid for r in best.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
