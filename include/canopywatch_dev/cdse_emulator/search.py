"""Search parameters: CQL2 text/JSON filters, STAC query, times, bboxes, limits."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from canopywatch_dev.cdse_emulator.config import COLLECTION_ID
from canopywatch_dev.cdse_emulator.errors import BadPayload
from canopywatch_dev.cdse_emulator.items import scene_properties
from canopywatch_dev.cdse_world import (
    Scene,
    World,
)

_CQL_CLAUSE = re.compile(
    r"^\s*(?P<prop>[A-Za-z_][\w:.\-]*)\s*(?P<op><=|>=|<>|!=|=|<|>)\s*"
    r"(?P<value>'[^']*'|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$"
)
_CQL_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


# ---------------------------------------------------------------- search parameters


@dataclass(frozen=True)
class Comparison:
    prop: str
    op: str
    value: float | str

    def matches(self, properties: Mapping[str, Any]) -> bool:
        actual = properties.get(self.prop)
        if actual is None:
            return False
        if isinstance(self.value, str):
            left, right = str(actual), self.value
            return {"=": left == right, "<>": left != right}.get(self.op, False)
        number = float(actual)
        return {
            "<": number < self.value,
            "<=": number <= self.value,
            ">": number > self.value,
            ">=": number >= self.value,
            "=": number == self.value,
            "<>": number != self.value,
        }[self.op]


def parse_cql2_text(text: str) -> list[Comparison]:
    """``prop <op> literal`` clauses joined by AND; anything else is a clear 400."""
    comparisons = []
    for clause in _CQL_AND.split(text.strip()):
        match = _CQL_CLAUSE.match(clause)
        if match is None:
            raise BadPayload(
                f"Cannot parse cql2-text filter clause {clause!r}: the emulator supports "
                "'property <|<=|>|>=|=|<> literal' clauses joined by AND",
                "filter",
                text,
            )
        raw = match.group("value")
        value: float | str = raw[1:-1] if raw.startswith("'") else float(raw)
        op = "<>" if match.group("op") == "!=" else match.group("op")
        comparisons.append(Comparison(match.group("prop"), op, value))
    return comparisons


def parse_cql2_json(node: Any) -> list[Comparison]:
    if not isinstance(node, dict) or "op" not in node or not isinstance(node.get("args"), list):
        raise BadPayload("cql2-json filter nodes need 'op' and 'args'", "filter", node)
    op = str(node["op"]).lower()
    if op == "and":
        return [c for arg in node["args"] for c in parse_cql2_json(arg)]
    args = node["args"]
    if (
        op not in {"<", "<=", ">", ">=", "=", "<>"}
        or len(args) != 2
        or not isinstance(args[0], dict)
    ):
        raise BadPayload(f"Unsupported cql2-json operation {op!r}", "filter", node)
    value = args[1]
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        raise BadPayload("cql2-json comparisons need a number or string literal", "filter", node)
    return [
        Comparison(
            str(args[0].get("property")), op, value if isinstance(value, str) else float(value)
        )
    ]


def parse_stac_query(query: Any) -> list[Comparison]:
    """The STAC query extension: ``{"eo:cloud_cover": {"lte": 30}}``."""
    operators = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "=", "neq": "<>"}
    if not isinstance(query, dict):
        raise BadPayload("query must be an object", "query", query)
    comparisons = []
    for prop, conditions in query.items():
        if not isinstance(conditions, dict):
            raise BadPayload(f"query.{prop} must be an object of operators", "query", query)
        for name, value in conditions.items():
            if name not in operators or isinstance(value, bool | list | dict | None):
                raise BadPayload(f"Unsupported query operator {name!r} for {prop}", "query", query)
            literal = value if isinstance(value, str) else float(value)
            comparisons.append(Comparison(prop, operators[name], literal))
    return comparisons


def parse_time(text: str, parameter: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadPayload(f"Cannot parse time {text!r}", parameter, text) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_datetime_interval(value: Any) -> tuple[datetime | None, datetime | None]:
    """A single RFC 3339 time or ``start/end`` with ``..`` (or empty) for open ends."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        raise BadPayload("datetime must be a string", "datetime", value)
    if "/" not in value:
        instant = parse_time(value, "datetime")
        return instant, instant
    start_text, end_text = value.split("/", 1)
    start = None if start_text in ("", "..") else parse_time(start_text, "datetime")
    end = None if end_text in ("", "..") else parse_time(end_text, "datetime")
    if start and end and start > end:
        raise BadPayload("datetime interval start is after its end", "datetime", value)
    return start, end


def parse_lonlat_bbox(value: Any, parameter: str) -> BaseGeometry:
    if not isinstance(value, list) or len(value) != 4:
        raise BadPayload("bbox must be [minx, miny, maxx, maxy]", parameter, value)
    try:
        minx, miny, maxx, maxy = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise BadPayload("bbox values must be numbers", parameter, value) from exc
    if minx > maxx or miny > maxy:
        raise BadPayload("bbox minimum is greater than its maximum", parameter, value)
    return box(minx, miny, maxx, maxy)


def parse_geojson(value: Any, parameter: str) -> BaseGeometry:
    try:
        geometry = shape(value)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise BadPayload(f"Invalid GeoJSON geometry: {exc}", parameter, value) from exc
    if geometry.is_empty:
        raise BadPayload("Geometry is empty", parameter, value)
    return geometry


@dataclass(frozen=True)
class SceneQuery:
    """What a catalogue search selects, independent of paging."""

    area: BaseGeometry | None = None
    start: datetime | None = None
    end: datetime | None = None
    ids: frozenset[str] | None = None
    comparisons: tuple[Comparison, ...] = ()

    def select(self, world: World) -> list[Scene]:
        return [scene for scene in world.scenes if self._matches(scene)]

    def _matches(self, scene: Scene) -> bool:
        if self.ids is not None and scene.id not in self.ids:
            return False
        if (self.start and scene.datetime < self.start) or (self.end and scene.datetime > self.end):
            return False
        if self.area is not None and not self.area.intersects(scene.area.footprint):
            return False
        properties = scene_properties(scene)
        return all(comparison.matches(properties) for comparison in self.comparisons)


def _check_properties(comparisons: Sequence[Comparison], parameter: str) -> None:
    known = {
        "datetime",
        "platform",
        "constellation",
        "eo:cloud_cover",
        "grid:code",
        "processing:version",
        "proj:epsg",
        "sat:relative_orbit",
        "gsd",
    }
    for comparison in comparisons:
        if comparison.prop not in known:
            raise BadPayload(
                f"Filtering on {comparison.prop!r} is not supported; use one of {sorted(known)}",
                parameter,
                comparison.prop,
            )


def scene_query_from(body: Mapping[str, Any], *, stac: bool) -> SceneQuery:
    """The selection part of a Catalog API (``stac=False``) or STAC v1 search body."""
    collections = body.get("collections")
    if collections is not None:
        if not isinstance(collections, list) or not all(isinstance(c, str) for c in collections):
            raise BadPayload(
                "collections must be a list of collection ids", "collections", collections
            )
        unknown = [c for c in collections if c != COLLECTION_ID]
        if unknown:
            raise BadPayload(
                f"Unknown collection(s) {unknown}; served: [{COLLECTION_ID!r}]",
                "collections",
                collections,
            )
    area = None
    if body.get("bbox") is not None:
        area = parse_lonlat_bbox(body["bbox"], "bbox")
    if body.get("intersects") is not None:
        geometry = parse_geojson(body["intersects"], "intersects")
        area = geometry if area is None else area.intersection(geometry)
    start, end = parse_datetime_interval(body.get("datetime"))
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise BadPayload("ids must be a list of strings", "ids", ids)
    comparisons = _filter_comparisons(body)
    if stac and body.get("query") is not None:
        comparisons += parse_stac_query(body["query"])
    _check_properties(comparisons, "filter")
    return SceneQuery(area, start, end, None if ids is None else frozenset(ids), tuple(comparisons))


def _filter_comparisons(body: Mapping[str, Any]) -> list[Comparison]:
    query_filter = body.get("filter")
    if query_filter is None:
        return []
    language = body.get(
        "filter-lang", "cql2-json" if isinstance(query_filter, dict) else "cql2-text"
    )
    if language == "cql2-text" and isinstance(query_filter, str):
        return parse_cql2_text(query_filter)
    if language == "cql2-json" and isinstance(query_filter, dict):
        return parse_cql2_json(query_filter)
    raise BadPayload(f"filter does not match filter-lang {language!r}", "filter-lang", language)


def parse_limit(value: Any, default: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadPayload("limit must be a positive integer", "limit", value)
    return min(int(value), maximum)  # the STAC API spec: over the maximum means the maximum
