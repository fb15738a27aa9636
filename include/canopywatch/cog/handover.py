"""The pending scenes handed to the COG job, so that Spark never reads Delta.

The task that launches spark-submit works the pending rows out with delta-rs
(``pending_rows``: rows of ``scenes_raw`` without a *valid* row in ``scenes_cog``, or
just the given ids, as ``canopywatch.cog.job.pending_scenes`` selects them with
delta-spark) and writes them as one JSON object under ``_jobs/cog_convert/`` in the
lake's bucket, keyed by the run (``job_key``). The Spark driver reads that object with
boto3 (``read_handover``), wherever it runs: local, standalone client mode, or a
Kubernetes driver pod that sees nothing of the launching machine's files. The object is
a work list, not a record: the lake consumer still writes ``scenes_cog`` from the
SceneConverted messages, exactly once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from canopywatch.cog.job import SCENE_COLUMNS

if TYPE_CHECKING:  # the Spark driver reads the object without loading delta-rs
    from canopywatch.lake.tables import Lake

FORMAT = "canopywatch.cog-scenes/1"
JOBS_PREFIX = "_jobs/cog_convert"
CONTENT_TYPE = "application/json"
_TEXT_COLUMNS = ("scene_id", "bucket", "raw_key", "function")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


class HandoverError(ValueError):
    """The hand-over object is missing, not ours, or its rows are malformed."""


def pending_rows(lake: Lake, scene_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
    """SCENE_COLUMNS of the raw scenes without a valid COG (or of ``scene_ids``), by id."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from canopywatch.lake.tables import SCENES_COG, SCENES_RAW, table_exists

    if not table_exists(lake, SCENES_RAW):
        return []
    raw = DeltaTable(lake.uri(SCENES_RAW), storage_options=lake.options()).to_pyarrow_table(
        columns=list(SCENE_COLUMNS)
    )
    if scene_ids:
        raw = raw.filter(pc.is_in(raw["scene_id"], value_set=_strings(scene_ids)))
    elif table_exists(lake, SCENES_COG):
        cogs = DeltaTable(lake.uri(SCENES_COG), storage_options=lake.options()).to_pyarrow_table(
            columns=["scene_id", "valid"]
        )
        done = cogs.filter(pc.equal(cogs["valid"], True))["scene_id"]
        raw = raw.filter(pc.invert(pc.is_in(raw["scene_id"], value_set=done.combine_chunks())))
    rows = raw.to_pylist()
    return sorted(rows, key=lambda r: str(r["scene_id"]))


def _strings(values: Sequence[str]) -> Any:
    import pyarrow as pa

    return pa.array([str(v) for v in values], type=pa.string())


def job_key(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
    """``_jobs/cog_convert/<dag>/<run>/<task>[.<map index>].try<n>.json``, S3-safe."""
    task = task_id if map_index < 0 else f"{task_id}.{map_index}"
    parts = [_safe(dag_id), _safe(run_id), f"{_safe(task)}.try{int(try_number)}.json"]
    return "/".join([JOBS_PREFIX, *parts])


def _safe(part: str) -> str:
    cleaned = _UNSAFE.sub("_", part).strip("._")
    return cleaned or "_"


def handover_document(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The object's bytes: the format tag and one record of SCENE_COLUMNS per scene."""
    scenes = [{c: row[c] for c in SCENE_COLUMNS} for row in rows]
    return json.dumps({"format": FORMAT, "columns": list(SCENE_COLUMNS), "scenes": scenes},
                      separators=(",", ":")).encode()  # fmt: skip


def parse_handover(data: bytes) -> list[dict[str, Any]]:
    """The rows of a hand-over object; HandoverError when it is not one, or a row is bad."""
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise HandoverError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise HandoverError(f"not a {FORMAT} document (format: {found!r})")
    scenes = document.get("scenes")
    if not isinstance(scenes, list):
        raise HandoverError("no 'scenes' list")
    rows: list[dict[str, Any]] = []
    for n, scene in enumerate(scenes):
        if not isinstance(scene, dict):
            raise HandoverError(f"scene {n}: not an object")
        missing = [c for c in SCENE_COLUMNS if c not in scene]
        if missing:
            raise HandoverError(f"scene {n}: missing {', '.join(missing)}")
        for column in _TEXT_COLUMNS:
            if not isinstance(scene[column], str) or not scene[column]:
                raise HandoverError(f"scene {n}: {column} must be a non-empty string")
        size = scene["size_bytes"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise HandoverError(f"scene {n}: size_bytes must be a non-negative integer")
        rows.append({c: scene[c] for c in SCENE_COLUMNS})
    return rows


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` (or ``s3a://``) -> (bucket, key)."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme not in ("s3", "s3a") or not bucket or not key:
        raise HandoverError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


def write_handover(store: Any, key: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """Put the rows at ``key`` of ``store`` (an ObjectStore); returns its ``s3://`` URI."""
    store.put(key, handover_document(rows), CONTENT_TYPE, {"format": FORMAT})
    return f"s3://{store.bucket}/{key}"


def read_handover(client: Any, uri: str) -> list[dict[str, Any]]:
    """The rows at ``uri``, read with a boto3 S3 client (the Spark driver's)."""
    bucket, key = split_uri(uri)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except client.exceptions.NoSuchKey:
        raise HandoverError(f"{uri} does not exist") from None
    return parse_handover(body.read())


def delete_handover(client: Any, uri: str) -> None:
    bucket, key = split_uri(uri)
    client.delete_object(Bucket=bucket, Key=key)
