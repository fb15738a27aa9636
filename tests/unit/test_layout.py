from datetime import UTC, datetime, timedelta, timezone

import pytest

from canopywatch.geo import BBox
from canopywatch.layout import LayoutError, SceneKey, parse_key

KEY = SceneKey(
    source="sentinel_hub",
    function="s2l2a_bands",
    geohash="6tgp2",
    acquired_at=datetime(2024, 3, 5, 13, 51, 19, tzinfo=UTC),
    bbox=BBox(-55.1, -10.05, -55.05, -10.0),
)


def test_key_follows_the_product_layout():
    assert KEY.key == (
        "sentinel_hub/s2l2a_bands/6tgp2/20240305T135119Z/"
        "bbox_-55.100000_-10.050000_-55.050000_-10.000000/raw.tif"
    )
    assert KEY.with_name("cog.tif").key.endswith("/cog.tif")
    assert parse_key(KEY.key) == KEY


def test_timestamps_are_utc():
    local = datetime(2024, 3, 5, 10, 51, 19, tzinfo=timezone(timedelta(hours=-3)))
    key = SceneKey("sentinel_hub", "ndvi", "6tgp2", local, KEY.bbox)
    assert "/20240305T135119Z/" in key.key


@pytest.mark.parametrize(
    "key",
    [
        "/sentinel_hub/s2l2a_bands/6tgp2/20240305T135119Z/bbox_-55.100000_-10.050000_-55.050000_-10.000000/raw.tif",
        "sentinel_hub/../6tgp2/20240305T135119Z/bbox_-55.100000_-10.050000_-55.050000_-10.000000/raw.tif",
        "sentinel_hub/s2l2a_bands/6tgp2/2024-03-05/bbox_-55.100000_-10.050000_-55.050000_-10.000000/raw.tif",
        "sentinel_hub/s2l2a_bands/6tgp2/20240305T135119Z/bbox_1_2_3_4/raw.tif",
        "sentinel_hub/s2l2a_bands/6tgpa/20240305T135119Z/bbox_-55.100000_-10.050000_-55.050000_-10.000000/raw.tif",
        "sentinel_hub/S2/6tgp2/20240305T135119Z/bbox_-55.100000_-10.050000_-55.050000_-10.000000/raw.tif",
        "ftp/s2l2a_bands/6tgp2/20240305T135119Z/bbox_-55.100000_-10.050000_-55.050000_-10.000000/raw.tif",
        "sentinel_hub/s2l2a_bands/6tgp2/20240305T135119Z/bbox_-55.100000_-10.050000_-55.050000_-10.000000/x.sh",
    ],
)
def test_off_layout_keys_are_rejected(key):
    with pytest.raises(LayoutError):
        parse_key(key)


def test_naive_datetime_is_rejected():
    with pytest.raises(LayoutError, match="timezone"):
        SceneKey("sentinel_hub", "ndvi", "6tgp2", datetime(2024, 1, 1), KEY.bbox)
