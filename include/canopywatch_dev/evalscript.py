"""Sentinel Hub evalscripts (``//VERSION=3``) run in an embedded V8 (``mini-racer``).

``parse_setup`` runs ``setup()`` and describes its inputs and outputs; ``evaluate`` runs
``evaluatePixel`` over every pixel inside V8 in one call. Band values go in as one base64 string
of little-endian uint16 digital numbers with a per-band scale (1 for DN, 1/10000 for
REFLECTANCE) applied in JavaScript, so the script computes in double precision as on the real
service; outputs come back as one Float64Array. ``to_sample_type`` formats the values like the
service does for UINT8, UINT16, FLOAT32 and AUTO.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer

VERSION_LINE = "//VERSION=3"
SAMPLE_TYPES = ("AUTO", "UINT8", "UINT16", "FLOAT32")
UNITS = ("DN", "REFLECTANCE")
DEFAULT_UNITS = "REFLECTANCE"
UNITLESS_BANDS = frozenset({"SCL", "dataMask"})
MOSAICKING_SIMPLE = "SIMPLE"
_TIMEOUT_S = 60.0
_MAX_MEMORY_BYTES = 1 << 30

# Utility functions the service offers to evalscripts (subset), then the pixel loop.
_HARNESS = r"""
function index(a, b) { return (a + b) === 0 ? 0 : (a - b) / (a + b); }
function clamp(value, low, high) { return Math.max(low, Math.min(high, value)); }
function __cwDecode(text) {
  var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  var lookup = new Uint8Array(128);
  for (var i = 0; i < alphabet.length; i++) { lookup[alphabet.charCodeAt(i)] = i; }
  var pad = text.endsWith("==") ? 2 : (text.endsWith("=") ? 1 : 0);
  var out = new Uint8Array(text.length / 4 * 3 - pad);
  var o = 0;
  for (var j = 0; j < text.length; j += 4) {
    var n = (lookup[text.charCodeAt(j)] << 18) | (lookup[text.charCodeAt(j + 1)] << 12) |
            (lookup[text.charCodeAt(j + 2)] << 6) | lookup[text.charCodeAt(j + 3)];
    if (o < out.length) { out[o++] = (n >> 16) & 255; }
    if (o < out.length) { out[o++] = (n >> 8) & 255; }
    if (o < out.length) { out[o++] = n & 255; }
  }
  return out;
}
function __cwSetup() {
  if (typeof setup !== "function") { throw new Error("function setup() is missing"); }
  if (typeof evaluatePixel !== "function") { throw new Error("function evaluatePixel() is missing"); }
  return JSON.stringify(setup());
}
function __cwRun(job) {
  var values = new Uint16Array(__cwDecode(job.data).buffer);
  var names = job.bands, scales = job.scales, outputs = job.outputs, n = job.pixels;
  var total = 0, offsets = [];
  for (var k = 0; k < outputs.length; k++) { offsets.push(total); total += n * outputs[k].bands; }
  var result = new Float64Array(total);
  var scenes = job.scenes, inputMetadata = job.inputMetadata, customData = {}, outputMetadata = {};
  for (var p = 0; p < n; p++) {
    var sample = {};
    for (var b = 0; b < names.length; b++) { sample[names[b]] = values[b * n + p] * scales[b]; }
    var returned = evaluatePixel(sample, scenes, inputMetadata, customData, outputMetadata);
    for (var q = 0; q < outputs.length; q++) {
      var spec = outputs[q];
      var vector = Array.isArray(returned) || ArrayBuffer.isView(returned) ?
        (outputs.length === 1 ? returned : undefined) : (returned == null ? undefined : returned[spec.id]);
      if (vector == null) {
        throw new Error("evaluatePixel() returned no values for output '" + spec.id + "'");
      }
      if (vector.length !== spec.bands) {
        throw new Error("evaluatePixel() returned " + vector.length + " values for output '" +
          spec.id + "', which declares " + spec.bands + " bands");
      }
      var base = offsets[q] + p * spec.bands;
      for (var c = 0; c < spec.bands; c++) { result[base + c] = Number(vector[c]); }
    }
  }
  return result;
}
function __cwUserData(scenes, inputMetadata) {
  if (typeof updateOutputMetadata !== "function") { return "{}"; }
  var outputMetadata = {};
  updateOutputMetadata(scenes, inputMetadata, outputMetadata);
  return JSON.stringify(outputMetadata.userData === undefined ? {} : outputMetadata.userData);
}
"""


class EvalscriptError(ValueError):
    """The evalscript cannot be run; the message is safe to show to the client."""


@dataclass(frozen=True)
class InputBand:
    name: str
    units: str


@dataclass(frozen=True)
class OutputSpec:
    id: str
    bands: int
    sample_type: str


@dataclass(frozen=True)
class EvalscriptSetup:
    inputs: tuple[InputBand, ...]
    outputs: tuple[OutputSpec, ...]
    mosaicking: str

    def output(self, identifier: str) -> OutputSpec | None:
        return next((spec for spec in self.outputs if spec.id == identifier), None)


# mini-racer 0.14 segfaults when a thread creates a V8 context while another thread's
# context is alive (three threads rendering at once crash within seconds, measured), so one
# Evalscript at a time per process: the lock is held from construction to close (the local
# endpoint renders requests on several threads; their V8 parts take turns)
_V8_LOCK = threading.RLock()


class Evalscript:
    """One evalscript loaded into its own V8 context. Use as a context manager: it holds the
    process's V8 lock from construction until it is closed."""

    def __init__(self, source: str) -> None:
        if not source.lstrip().startswith(VERSION_LINE):
            raise EvalscriptError("Evalscript must start with //VERSION=3")
        _V8_LOCK.acquire()
        self._locked = True
        self._context: MiniRacer | None = None
        try:
            self._context = MiniRacer()
            self._run_js(lambda: self._js.eval(_HARNESS))
            self._run_js(lambda: self._js.eval(source))
            self.setup = _parse_setup(
                self._run_js(lambda: self._js.call("__cwSetup", timeout_sec=_TIMEOUT_S))
            )
        except BaseException:
            self.close()
            raise

    @property
    def _js(self) -> MiniRacer:
        if self._context is None:
            raise EvalscriptError("the evalscript is closed")
        return self._context

    def close(self) -> None:
        try:
            if self._context is not None:
                self._context.close()
        finally:
            self._context = None
            if self._locked:
                self._locked = False
                _V8_LOCK.release()

    def __enter__(self) -> Evalscript:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def evaluate(
        self,
        samples: Mapping[str, npt.NDArray[np.uint16]],
        scales: Mapping[str, float],
        metadata: Mapping[str, Any],
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Runs evaluatePixel on every pixel; returns (height, width, bands) per output id."""
        names = list(samples)
        first = samples[names[0]]
        height, width = first.shape
        stacked = np.stack([samples[name] for name in names]).astype("<u2")
        job = {
            "data": base64.b64encode(stacked.tobytes()).decode("ascii"),
            "bands": names,
            "scales": [scales[name] for name in names],
            "pixels": height * width,
            "outputs": [{"id": spec.id, "bands": spec.bands} for spec in self.setup.outputs],
            "scenes": metadata.get("scenes", []),
            "inputMetadata": metadata.get("inputMetadata", {}),
        }
        # call() would JSON-serialise the result; eval() hands the Float64Array back as bytes
        job_json = json.dumps(job, separators=(",", ":"))
        raw = self._run_js(
            lambda: self._js.eval(
                f"__cwRun({job_json})", timeout_sec=_TIMEOUT_S, max_memory=_MAX_MEMORY_BYTES
            )
        )
        flat = np.frombuffer(bytes(raw), dtype="<f8")
        results: dict[str, npt.NDArray[np.float64]] = {}
        offset = 0
        for spec in self.setup.outputs:
            size = height * width * spec.bands
            results[spec.id] = flat[offset : offset + size].reshape(height, width, spec.bands)
            offset += size
        return results

    def user_data(self, metadata: Mapping[str, Any]) -> Any:
        """What ``updateOutputMetadata`` puts in ``outputMetadata.userData`` ({} without it)."""
        text = self._run_js(
            lambda: self._js.call(
                "__cwUserData",
                metadata.get("scenes", []),
                metadata.get("inputMetadata", {}),
                timeout_sec=_TIMEOUT_S,
            )
        )
        return json.loads(str(text))

    @staticmethod
    def _run_js(action: Any) -> Any:
        try:
            with _V8_LOCK:
                return action()
        except JSTimeoutException as exc:
            raise EvalscriptError(f"Evalscript timed out after {_TIMEOUT_S:.0f} s") from exc
        except JSOOMException as exc:
            raise EvalscriptError("Evalscript ran out of memory") from exc
        except JSEvalException as exc:
            raise EvalscriptError(f"Failed to evaluate script! {_first_line(str(exc))}") from exc


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _parse_setup(setup_json: Any) -> EvalscriptSetup:
    try:
        setup = json.loads(str(setup_json))
    except ValueError as exc:
        raise EvalscriptError("setup() must return an object") from exc
    if not isinstance(setup, dict):
        raise EvalscriptError("setup() must return an object")
    mosaicking = str(setup.get("mosaicking", MOSAICKING_SIMPLE)).upper()
    if mosaicking != MOSAICKING_SIMPLE:
        raise EvalscriptError(f"mosaicking {mosaicking} is not supported, only SIMPLE")
    return EvalscriptSetup(
        inputs=_parse_inputs(setup.get("input")),
        outputs=_parse_outputs(setup.get("output")),
        mosaicking=mosaicking,
    )


def _parse_inputs(raw: Any) -> tuple[InputBand, ...]:
    if not isinstance(raw, list) or not raw:
        raise EvalscriptError("setup().input must be a non-empty array")
    if all(isinstance(item, str) for item in raw):
        return tuple(InputBand(name, _units_for(name, DEFAULT_UNITS)) for name in raw)
    bands: list[InputBand] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("bands"), list):
            raise EvalscriptError("setup().input entries must be band names or {bands: [...]}")
        names = [str(name) for name in item["bands"]]
        units = item.get("units", DEFAULT_UNITS)
        unit_list = units if isinstance(units, list) else [units] * len(names)
        if len(unit_list) != len(names):
            raise EvalscriptError("setup().input units must match the number of bands")
        bands.extend(
            InputBand(name, _units_for(name, str(u)))
            for name, u in zip(names, unit_list, strict=True)
        )
    return tuple(bands)


def _units_for(band: str, units: str) -> str:
    normalised = units.upper()
    if normalised not in UNITS:
        raise EvalscriptError(
            f"units {units!r} are not supported for {band}; use DN or REFLECTANCE"
        )
    return "DN" if band in UNITLESS_BANDS else normalised


def _parse_outputs(raw: Any) -> tuple[OutputSpec, ...]:
    items = raw if isinstance(raw, list) else [raw]
    outputs: list[OutputSpec] = []
    for item in items:
        if not isinstance(item, dict):
            raise EvalscriptError("setup().output must be an object or an array of objects")
        sample_type = str(item.get("sampleType", "AUTO")).upper()
        if sample_type not in SAMPLE_TYPES:
            raise EvalscriptError(f"sampleType {sample_type} is not supported")
        bands = item.get("bands", 1)
        if not isinstance(bands, int) or bands < 1:
            raise EvalscriptError("setup().output bands must be a positive integer")
        outputs.append(OutputSpec(str(item.get("id", "default")), bands, sample_type))
    if len({spec.id for spec in outputs}) != len(outputs):
        raise EvalscriptError("setup().output ids must be unique")
    return tuple(outputs)


def to_sample_type(values: npt.NDArray[np.float64], sample_type: str) -> npt.NDArray[Any]:
    """Formats computed values: integers are rounded half up and clamped; AUTO stretches 0-1 to
    0-255; NaN becomes 0 in integer types."""
    if sample_type == "FLOAT32":
        return values.astype(np.float32)
    scaled = values * 255.0 if sample_type == "AUTO" else values
    dtype = np.uint16 if sample_type == "UINT16" else np.uint8
    limit = float(np.iinfo(dtype).max)
    rounded = np.floor(np.nan_to_num(scaled, nan=0.0, posinf=limit, neginf=0.0) + 0.5)
    return np.clip(rounded, 0.0, limit).astype(dtype)


def band_scales(inputs: Sequence[InputBand]) -> dict[str, float]:
    """Multiplier from served DN to what the script sees."""
    return {band.name: 1e-4 if band.units == "REFLECTANCE" else 1.0 for band in inputs}
