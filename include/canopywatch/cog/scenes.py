"""One scene in the object store: ``raw.tif`` -> ``cog.tif`` beside it, idempotently.

``convert_scene`` never raises for a problem of the scene itself or a transient store
error: the outcome (converted, skipped or failed, with the reason) is returned, so one
corrupt file cannot fail a batch, and a failed scene is picked up again by the next
run (only valid COGs count as done). A ``cog.tif`` already there is kept when it was
made from the same raw bytes (its ``raw-sha256`` metadata) and still validates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from canopywatch.cog.convert import CogConversionError, CogValidation, convert, validate
from canopywatch.cog.profiles import DEFAULT_PROFILE, CogProfile, get_profile
from canopywatch.evalscripts import FUNCTIONS
from canopywatch.layout import LayoutError, parse_key
from canopywatch.messages import SceneConverted
from canopywatch.storage.objects import ObjectStore, sha256

log = logging.getLogger(__name__)

COG_CONTENT_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
RAW_CHECKSUM_META = "raw-sha256"
PROFILE_META = "cog-profile"

CONVERTED, SKIPPED, FAILED = "converted", "skipped", "failed"


@dataclass(frozen=True)
class RawScene:
    """What the conversion needs from a ``scenes_raw`` row."""

    scene_id: str
    bucket: str
    raw_key: str
    function: str | None = None  # the evalscript: names the bands (dataMask)


@dataclass(frozen=True)
class SceneConversion:
    scene_id: str
    raw_key: str
    cog_key: str
    status: str  # CONVERTED | SKIPPED | FAILED
    raw_bytes: int = 0
    cog_bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.status != FAILED

    def message(self) -> SceneConverted:
        return SceneConverted(
            scene_id=self.scene_id,
            cog_key=self.cog_key,
            valid=self.valid,
            validation_errors=list(self.errors),
            validation_warnings=list(self.warnings),
        )

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SceneConversion:
        return cls(**record)


def cog_key_for(raw_key: str) -> str:
    """``.../raw.tif`` -> ``.../cog.tif`` (raises LayoutError for keys off the layout)."""
    return parse_key(raw_key).with_name("cog.tif").key


def band_names_for(function: str | None) -> tuple[str, ...] | None:
    known = FUNCTIONS.get(function or "")
    return known.bands if known else None


def _existing_valid_cog(store: ObjectStore, cog_key: str, raw_checksum: str) -> int | None:
    """The size of a valid ``cog.tif`` made from these raw bytes, or None."""
    existing = store.head(cog_key)
    if existing is None:
        return None
    if existing.metadata.get(RAW_CHECKSUM_META) != raw_checksum:
        return None
    data = store.get(cog_key)
    return len(data) if validate(data).valid else None


def convert_scene(
    store: ObjectStore, scene: RawScene, *, profile: CogProfile | str = DEFAULT_PROFILE
) -> SceneConversion:
    """Make (or keep) the scene's COG beside its raw file; the outcome, never an exception."""
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    started = time.perf_counter()
    try:
        cog_key = cog_key_for(scene.raw_key)
    except LayoutError as exc:
        return SceneConversion(
            scene.scene_id, scene.raw_key, scene.raw_key, FAILED, errors=[f"raw_key: {exc}"]
        )

    def failed(reason: str, raw_bytes: int = 0) -> SceneConversion:
        log.warning("scene %s (%s): COG not made: %s", scene.scene_id, scene.raw_key, reason)
        return SceneConversion(
            scene.scene_id,
            scene.raw_key,
            cog_key,
            FAILED,
            raw_bytes=raw_bytes,
            seconds=time.perf_counter() - started,
            errors=[reason],
        )

    try:
        raw_head = store.head(scene.raw_key)
        if raw_head is None:
            return failed(f"raw file s3://{store.bucket}/{scene.raw_key} does not exist")
        raw: bytes | None = None
        raw_checksum = raw_head.checksum
        if not raw_checksum:  # stored without our checksum metadata: hash it here
            raw = store.get(scene.raw_key)
            raw_checksum = sha256(raw)
        kept = _existing_valid_cog(store, cog_key, raw_checksum)
        if kept is not None:
            log.info("scene %s: valid COG already there (%s); skipped", scene.scene_id, cog_key)
            return SceneConversion(
                scene.scene_id,
                scene.raw_key,
                cog_key,
                SKIPPED,
                raw_bytes=raw_head.size,
                cog_bytes=kept,
                seconds=time.perf_counter() - started,
            )
        if raw is None:
            raw = store.get(scene.raw_key)
    except Exception as exc:  # the store is unreachable or refuses: recorded, retried next run
        return failed(f"object store: {type(exc).__name__}: {exc}")

    try:
        cog = convert(raw, profile=chosen, band_names=_names_matching(raw, scene.function))
    except CogConversionError as exc:
        return failed(str(exc), len(raw))
    except Exception as exc:  # GDAL failing in an unexpected way on this file
        return failed(f"conversion failed: {type(exc).__name__}: {exc}", len(raw))
    checked: CogValidation = validate(cog)
    if not checked.valid:
        return failed("COG validation: " + "; ".join(checked.errors), len(raw))
    try:
        store.put(
            cog_key,
            cog,
            COG_CONTENT_TYPE,
            {
                "scene-id": scene.scene_id,
                RAW_CHECKSUM_META: raw_checksum,
                PROFILE_META: chosen.name,
            },
        )
    except Exception as exc:
        return failed(f"object store: {type(exc).__name__}: {exc}", len(raw))
    seconds = time.perf_counter() - started
    log.info(
        "scene %s: COG %s written (%d -> %d bytes, %.2f s)",
        scene.scene_id,
        cog_key,
        len(raw),
        len(cog),
        seconds,
    )
    return SceneConversion(
        scene.scene_id,
        scene.raw_key,
        cog_key,
        CONVERTED,
        raw_bytes=len(raw),
        cog_bytes=len(cog),
        seconds=seconds,
        warnings=list(checked.warnings),
    )


def _names_matching(raw: bytes, function: str | None) -> tuple[str, ...] | None:
    """The evalscript's band names when they fit the file; else the file's own descriptions."""
    names = band_names_for(function)
    if names is None:
        return None
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(raw) as memfile, memfile.open() as dataset:
            return names if dataset.count == len(names) else None
    except Exception:
        return None  # convert() reports the unreadable file
