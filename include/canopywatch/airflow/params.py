"""The trigger-form Params the DAG files share, built from ``canopywatch.params`` (``form``):
the area (a bbox, or its four corner fields), an area name and optional dates."""

from __future__ import annotations

from airflow.sdk import Param

from canopywatch import params as form

AREA_NAME_MAX = 48


def area_params(empty_means: str) -> dict[str, Param]:
    """``bbox`` (text or JSON list) and the four number fields that may stand for it."""
    return {
        "bbox": Param(None, **form.bbox_schema(empty_means)),
        **{name: Param(None, **schema) for name, schema in form.corner_schemas().items()},
    }


def area_name(description: str) -> Param:
    return Param(
        None,
        type=["null", "string"],
        maxLength=AREA_NAME_MAX,
        title="Area name",
        description=description,
    )


def optional_date(title: str, description: str) -> Param:
    """A date the form may leave empty (``description`` says what empty means)."""
    return Param(None, type=["null", "string"], format="date", title=title, description=description)


def optional_layer(title: str, description: str) -> Param:
    """A raster or polygon layer (``s3://bucket/key`` or a path) the form may leave empty."""
    return Param(
        None,
        type=["null", "string"],
        maxLength=1024,
        pattern=r"^(s3://[a-z0-9.\-]{3,63}/\S+|/\S+)$",
        title=title,
        description=description,
    )
