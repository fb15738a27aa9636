"""The "Scenes in MinIO" link: only on the scene tasks, opening the run's own prefix."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from canopywatch.airflow import links


class Key(NamedTuple):
    dag_id: str
    task_id: str
    run_id: str
    try_number: int = 1
    map_index: int = -1


RUN_KEYS = [
    "sentinel_hub/s2l2a_bands/6vjyv/20240105T134200Z/bbox_1_2_3_4/raw.tif",
    "sentinel_hub/s2l2a_bands/6vjyv/20240110T134159Z/bbox_1_2_3_4/raw.tif",
]


def test_prefix_is_the_deepest_folder_of_the_run_keys() -> None:
    assert links.scene_prefix(RUN_KEYS) == "sentinel_hub/s2l2a_bands/6vjyv/"
    assert links.scene_prefix(RUN_KEYS[:1]) == RUN_KEYS[0].rsplit("/", 1)[0] + "/"
    two_areas = [RUN_KEYS[0], "sentinel_hub/s2l2a_bands/6vjz1/20240105T134200Z/b/raw.tif"]
    assert links.scene_prefix(two_areas) == "sentinel_hub/s2l2a_bands/"
    assert links.scene_prefix([]) == "sentinel_hub/"


def test_link_only_on_scene_tasks_and_to_the_run_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANOPYWATCH_BUCKET", "scenes-test")
    monkeypatch.delenv("CANOPYWATCH_MINIO_CONSOLE_PORT", raising=False)  # the default port
    asked: list[Key] = []

    def stored(ti_key: Key) -> list[str]:
        asked.append(ti_key._replace(task_id="summarize", map_index=-1))
        return RUN_KEYS

    monkeypatch.setattr(links, "_stored_keys", stored)
    link = links.ScenesInMinio()
    for task_id in ("dbt.mart_alert_summary_weekly_run", "resolve_areas", "record_scenes"):
        assert link.get_link(None, ti_key=Key("deforestation_monitor", task_id, "r1")) == ""
    url = link.get_link(None, ti_key=Key("deforestation_monitor", "download_scenes", "r1"))
    assert url == "http://127.0.0.1:19001/browser/scenes-test/sentinel_hub%2Fs2l2a_bands%2F6vjyv%2F"
    assert asked == [Key("deforestation_monitor", "summarize", "r1")]


def test_link_falls_back_to_the_scene_root(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_xcom(ti_key: Key) -> list[str]:
        raise RuntimeError("no metadata database here")

    monkeypatch.setattr(links, "_stored_keys", no_xcom)
    url = links.ScenesInMinio().get_link(None, ti_key=Key("d", "summarize", "r"))
    assert url.endswith("/sentinel_hub%2F")
