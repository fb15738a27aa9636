"""A run's areas from its conf: bbox, a registered aoi_name, or all; bad values refused."""

from __future__ import annotations

import json

import pytest

from canopywatch.geo import BBox
from canopywatch.run_areas import RunConfError, check_conf_values, select_areas
from canopywatch.settings import Settings
from canopywatch.storage.aois import RegisteredAoi

SETTINGS = Settings.from_env({})
REGISTERED = [
    RegisteredAoi("tapajos-1", "Tapajós 1", BBox(-55.4, -7.1, -55.35, -7.05), "ndvi", 60.0),
    RegisteredAoi("xingu", "xingu", BBox(-52.1, -3.5, -52.0, -3.4)),
]


def select(params, registered=REGISTERED):
    calls = []

    def lookup():
        calls.append(1)
        return registered

    areas = select_areas(params, lookup, SETTINGS, function="s2l2a_bands", max_cloud=80.0)
    return areas, calls


def test_a_bbox_run_does_not_read_the_registry():
    areas, calls = select({"bbox": [-55.4, -7.1, -55.35, -7.05], "aoi_name": "new one"})
    assert calls == [] and [(a.aoi.aoi_id, a.source) for a in areas] == [("new-one", "bbox")]


def test_aoi_name_alone_runs_only_that_registered_area_with_its_settings():
    for name in ("tapajos-1", "Tapajós 1", "TAPAJOS 1"):
        (area,), _ = select({"aoi_name": name})
        assert (area.aoi.aoi_id, area.function, area.max_cloud) == ("tapajos-1", "ndvi", 60.0)


def test_an_unknown_aoi_name_is_refused_instead_of_running_everything():
    with pytest.raises(RunConfError, match=r"'amazonia' is not a registered .*tapajos-1, xingu"):
        select({"aoi_name": "amazonia"})
    with pytest.raises(RunConfError, match="registered: none"):
        select({"aoi_name": "amazonia"}, registered=[])


def test_no_bbox_and_no_name_covers_every_registered_area():
    areas, calls = select({"aoi_name": "", "bbox": None})
    assert calls == [1] and [a.aoi.aoi_id for a in areas] == ["tapajos-1", "xingu"]


@pytest.mark.parametrize(
    ("conf", "reason"),
    [
        (json.loads('{"max_cloud": NaN}'), r"conf.max_cloud is nan"),
        (json.loads('{"bbox": [-55.4, -7.1, Infinity, -7.05]}'), r"conf.bbox\[2\] is inf"),
        ({"aoi_name": "a\x00b"}, "conf.aoi_name contains a NUL"),
        ({"extra": {"k\x00": 1}}, "conf.extra has a key with a NUL"),
        ({"aoi_name": 5}, "aoi_name must be text"),
    ],
)
def test_nan_infinity_and_nul_are_refused_readably(conf, reason):
    with pytest.raises(RunConfError, match=reason):
        select(conf)


def test_ordinary_values_pass():
    check_conf_values({"bbox": [1.0, 2, "3"], "nested": {"a": [True, None]}})
