"""Download throughput: CDSE endpoint -> verify -> MinIO, with 1 and 4 concurrent downloads.

    .venv/bin/python benchmarks/download.py [--scenes 24] [--size 512] [--quick] [--json OUT]

Starts MinIO (the platform's) and the local CDSE endpoint in its own process over a
simulated area, plans one request per acquisition day, and runs the real download
stage (sentinelhub Process API client, GeoTIFF verification, S3 PUT) into a fresh
bucket for each configuration. Prints scenes per minute, MB per second, the ratio
of 4 workers to 1, and the share of requests retried when 429s are injected.
``--quick``: 8 scenes of 256 px. ``--json OUT`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sentinelhub.exceptions import SHRateLimitWarning
from tqdm import tqdm

from canopywatch.download import Aoi, download_scene, make_aoi, plan_requests, plan_tiles
from canopywatch.evalscripts import EvalscriptFunction
from canopywatch.messages import DownloadRequest
from canopywatch.settings import Settings
from canopywatch.sources.copernicus import (
    CdseEndpoint,
    process_request,
    search_acquisitions,
    sh_config,
)
from canopywatch.storage.objects import ObjectStore
from canopywatch_dev.platform import minio, stack

CLIENT_ID, CLIENT_SECRET = "bench-client", uuid.uuid4().hex


@dataclass(frozen=True)
class Result:
    label: str
    workers: int
    scenes: int
    seconds: float
    bytes: int
    process_calls: int
    throttled: int

    @property
    def scenes_per_minute(self) -> float:
        return 60 * self.scenes / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_endpoint(world: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"CANOPYWATCH_CDSE_CLIENT_SECRET": CLIENT_SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "canopywatch_dev.cdse_emulator", "--world", str(world),
         "--port", str(port), "--client-id", CLIENT_ID, "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the CDSE endpoint did not start")


def admin(base: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        reply: dict[str, object] = json.loads(response.read())
        return reply


def process_counts(base: str) -> tuple[int, int]:
    stats: dict[str, Any] = admin(base, "/_emulator/stats")
    per_status: dict[str, int] = dict(stats.get("requests", {}).get("process", {}))
    return sum(per_status.values()), int(per_status.get("429", 0))


def run(
    label: str, requests: list[DownloadRequest], workers: int, base: str, settings: Settings
) -> Result:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    bench_settings = replace(settings, bucket=bucket, exports_bucket=bucket + "-x")
    minio.ensure_buckets(bench_settings)
    store = ObjectStore(minio.s3_client(bench_settings), bucket)
    config = sh_config(
        CdseEndpoint(
            CLIENT_ID, CLIENT_SECRET, base, base + "/auth/realms/CDSE/protocol/openid-connect/token"
        ),
        max_retries=50,
        sleep_s=0.5,
    )

    def fetch(request: DownloadRequest, function: EvalscriptFunction) -> bytes:
        return process_request(
            config, function, epsg=request.epsg, utm_bounds=request.utm_bounds,
            width=request.width, height=request.height, time_from=request.time_from,
            time_to=request.time_to, max_cloud=request.max_cloud,
        )  # fmt: skip

    calls_before, throttled_before = process_counts(base)
    started = time.perf_counter()
    total = 0
    with (
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=len(requests), desc=label, leave=False) as bar,
    ):
        for outcome in pool.map(lambda r: download_scene(r, fetch, store), requests):
            total += outcome.size_bytes
            bar.update()
    seconds = time.perf_counter() - started
    calls_after, throttled_after = process_counts(base)
    client = minio.s3_client(bench_settings)
    for key in store.list_keys():
        client.delete_object(Bucket=bucket, Key=key)
    for name in (bucket, bucket + "-x"):
        client.delete_bucket(Bucket=name)
    return Result(label, workers, len(requests), seconds, total,
                  calls_after - calls_before, throttled_after - throttled_before)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=24, help="acquisition days to download")
    parser.add_argument("--size", type=int, default=512, help="request size in px (square)")
    parser.add_argument("--quick", action="store_true", help="8 scenes of 256 px")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.scenes, args.size = 8, 256
    if args.scenes < 1 or not 16 <= args.size <= 2500:
        print("download.py: --scenes >= 1 and --size of 16..2500 px", file=sys.stderr)
        return 2

    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http endpoint only
    warnings.filterwarnings("ignore", category=SHRateLimitWarning)  # counted in the table instead
    settings = Settings.from_env()
    stack.up(settings, ["minio"])
    # a square area of --size px at 10 m around a point in the Amazon
    half = args.size * 10 / 2 / 111_320
    centre = (-55.375, -7.075)
    bbox = [centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half]
    world = {
        "areas": [
            {"name": "bench", "bbox": bbox, "start": "2023-01-01", "end": "2024-12-31", "seed": 3}
        ]
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        world_file = Path(tmp) / "world.json"
        world_file.write_text(json.dumps(world))
        endpoint = start_endpoint(world_file, port)
        try:
            aoi: Aoi = make_aoi(bbox, "bench", settings)
            tile = plan_tiles(aoi, settings)[0]
            config = sh_config(
                CdseEndpoint(
                    CLIENT_ID,
                    CLIENT_SECRET,
                    base,
                    base + "/auth/realms/CDSE/protocol/openid-connect/token",
                )
            )
            days = search_acquisitions(
                config,
                tile.bbox.as_tuple(),
                datetime(2023, 1, 1, tzinfo=UTC),
                datetime(2024, 12, 31, tzinfo=UTC),
                100,
            )
            requests = plan_requests(
                aoi, tile, days[: args.scenes], function="s2l2a_bands", max_cloud=100, resolution=10
            )
            console.print(
                f"{len(requests)} scenes of {tile.width}x{tile.height} px (8 bands uint16) per configuration"
            )
            results = [
                run("1 worker", requests, 1, base, settings),
                run("4 workers", requests, 4, base, settings),
            ]
            # the next len/3 Process API calls answer 429 (Retry-After 200 ms); the client retries them
            admin(base, "/_emulator/faults", {"faults": [
                {"endpoint": "process", "mode": "429", "count": max(1, len(requests) // 3), "retry_after_ms": 200}
            ]})  # fmt: skip
            results.append(run("4 workers, 429s injected", requests, 4, base, settings))
        finally:
            endpoint.terminate()
            endpoint.wait(10)

    table = Table(title="download stage: CDSE endpoint -> verify -> MinIO")
    for column in (
        "configuration",
        "scenes",
        "seconds",
        "scenes/min",
        "MB/s",
        "vs 1 worker",
        "requests retried",
    ):
        table.add_column(column, justify="right")
    baseline = results[0]
    for r in results:
        retried = (
            f"{r.throttled}/{r.process_calls} ({100 * r.throttled / max(1, r.process_calls):.0f}%)"
        )
        table.add_row(r.label, str(r.scenes), f"{r.seconds:.1f}", f"{r.scenes_per_minute:.1f}",
                      f"{r.mb_per_second:.2f}", f"{r.scenes_per_minute / baseline.scenes_per_minute:.2f}x", retried)  # fmt: skip
    console.print(table)
    if args.json:
        figures = [
            {
                "configuration": r.label,
                "workers": r.workers,
                "scenes": r.scenes,
                "seconds": round(r.seconds, 3),
                "scenes_per_min": round(r.scenes_per_minute, 2),
                "mb_per_s": round(r.mb_per_second, 3),
                "ratio_vs_1_worker": round(r.scenes_per_minute / baseline.scenes_per_minute, 3),
                "process_calls": r.process_calls,
                "throttled": r.throttled,
            }
            for r in results
        ]
        document = {"benchmark": "download", "size_px": args.size, "configurations": figures}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
