"""The trigger forms teach: every param of every DAG renders with a title and a description,
every choice is explained, the bbox is typed as four numbers (text, list or four fields), bad
values are refused with a readable reason, and empty dates are stated or refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from canopywatch import params as form

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
BBOX_TEXT = "-55.40,-7.10,-55.35,-7.05"
BBOX = [-55.40, -7.10, -55.35, -7.05]


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS_DIR))
    assert bag.import_errors == {}
    yield bag.dags
    mp.undo()


def _rendered(dag):
    """Each param as the trigger form gets it (value, schema, description), JSON-serialised."""
    return {name: json.loads(json.dumps(param.dump())) for name, param in dag.params.items()}


def test_every_param_of_every_dag_has_a_title_and_a_description(dags) -> None:
    with_params = {dag_id for dag_id, dag in dags.items() if dag.params}
    assert with_params >= {
        "deforestation_monitor",
        "deforestation_detect_weekly",
        "scene_curation",
        "catalog_sync",
    }
    for dag_id in with_params:
        for name, rendered in _rendered(dags[dag_id]).items():
            schema = rendered["schema"]
            assert schema.get("title"), f"{dag_id}.{name} has no title"
            assert len(rendered["description"] or "") >= 30, f"{dag_id}.{name}: {rendered}"
            if schema.get("type") == "object" or "object" in (schema.get("type") or []):
                assert schema.get("additionalProperties") is False, f"{dag_id}.{name}"


def test_every_choice_is_explained(dags) -> None:
    enums = 0
    for dag_id, dag in dags.items():
        for name, rendered in _rendered(dag).items():
            schema = rendered["schema"]
            if "enum" not in schema:
                continue
            enums += 1
            display = schema.get("values_display") or {}
            assert set(display) == set(schema["enum"]), f"{dag_id}.{name}"
            for value, label in display.items():
                assert label.startswith(value) and len(label) > len(value) + 10, label
                assert label in rendered["description"]
    assert enums >= 3  # function, method, profile


@pytest.mark.parametrize("dag_id", ["deforestation_monitor", "deforestation_detect_weekly"])
def test_bbox_as_text_list_or_four_fields(dags, dag_id: str) -> None:
    params = dags[dag_id].params
    bbox = params.get_param("bbox")
    assert bbox.resolve(BBOX_TEXT) == BBOX_TEXT
    assert bbox.resolve(BBOX) == BBOX
    assert bbox.resolve(None) is None
    for bad in ("-55.4,-7.1,-55.35", "nan,1,2,3", "Infinity,1,2,3", [1, 2, 3], "west,1,2,3"):
        with pytest.raises(Exception, match=r"Invalid input|does not match|too short|not valid"):
            bbox.resolve(bad)
    # the form shows it as one text box (several types), not a raw JSON list editor
    assert bbox.schema["type"] == ["null", "string", "array"]
    for name, _, limit in form.CORNERS:
        corner = params.get_param(name)
        assert corner.schema["section"] == form.CORNER_SECTION
        assert corner.resolve(-55.4) == -55.4
        with pytest.raises(Exception, match=r"Invalid input|greater than|less than"):
            corner.resolve(limit + 1)


def test_run_area_reads_every_form_of_the_bbox() -> None:
    corners = dict(zip([c for c, _, _ in form.CORNERS], BBOX, strict=True))
    assert form.run_area({"bbox": BBOX_TEXT})["bbox"] == BBOX
    assert form.run_area({"bbox": json.dumps(BBOX)})["bbox"] == BBOX
    assert form.run_area({"bbox": BBOX})["bbox"] == BBOX
    assert form.run_area({"bbox": None, **corners}) == {"bbox": BBOX}
    assert form.run_area({"bbox": BBOX_TEXT, **corners})["bbox"] == BBOX  # the same area twice
    assert form.run_area({"bbox": None, "max_cloud": 70})["bbox"] is None  # registered areas
    assert form.run_area({"bbox": [], "min_lon": None})["bbox"] is None


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"bbox": [math.nan, -7.1, -55.35, -7.05]}, "bbox\\[0\\] must be a finite number"),
        ({"bbox": [-55.4, math.inf, -55.35, -7.05]}, "bbox\\[1\\] must be a finite number"),
        ({"bbox": None, "min_lon": -55.4, "min_lat": -7.1}, "max_lon, max_lat missing"),
        (
            {"bbox": None, "min_lon": -55.4, "min_lat": -7.1, "max_lon": math.nan, "max_lat": 0},
            "max_lon must be a finite number",
        ),
        (
            {"bbox": BBOX_TEXT, "min_lon": 1, "min_lat": 1, "max_lon": 2, "max_lat": 2},
            "give the area once",
        ),
        ({"bbox": "-55.35,-7.1,-55.40,-7.05"}, "min"),
    ],
)
def test_run_area_refuses_bad_areas_with_a_reason(params, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        form.run_area(params)


def test_a_bbox_run_needs_its_dates_and_the_form_says_so(dags) -> None:
    with pytest.raises(form.ParamsError, match="start and end missing: a run for a bbox needs"):
        form.require_dates({"bbox": BBOX, "start": None, "end": ""})
    with pytest.raises(form.ParamsError, match=r"^end missing"):
        form.require_dates({"bbox": BBOX, "start": "2024-01-01"})
    form.require_dates({"bbox": None})  # registered areas: the data interval
    form.require_dates({"bbox": BBOX, "start": "2024-01-01", "end": "2024-01-31"})
    rendered = _rendered(dags["deforestation_monitor"])
    assert "Needed with a bbox" in rendered["start"]["description"]
    assert "2 days of look-back" in rendered["start"]["description"]
    assert "Needed with a bbox" in rendered["end"]["description"]
    weekly = _rendered(dags["deforestation_detect_weekly"])
    assert "empty: the end of the run's data" in weekly["end"]["description"]


def test_choices_match_what_the_library_offers() -> None:
    from canopywatch.cog.profiles import PROFILES
    from canopywatch.evalscripts import FUNCTIONS

    assert set(form.FUNCTION_CHOICES) == set(FUNCTIONS)
    assert set(form.PROFILE_CHOICES) == set(PROFILES)
    assert set(form.METHOD_CHOICES) == {"harmonic", "baseline", "xgboost"}
