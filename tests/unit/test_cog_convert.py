"""COG conversion and validation on generated rasters (no services)."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from canopywatch.cog.convert import CogConversionError, convert, overview_levels, validate
from canopywatch.cog.profiles import PROFILES, UnknownProfileError, get_profile
from canopywatch_dev.synthetic_raw import S2L2A_BANDS, synthetic_raw


def _geotiff(data: np.ndarray, tags: dict[str, str] | None = None, **profile) -> bytes:
    count, height, width = data.shape
    with MemoryFile() as memfile:
        with memfile.open(
            driver="GTiff",
            width=width,
            height=height,
            count=count,
            dtype=data.dtype,
            crs="EPSG:32721",
            transform=from_origin(500000, 9200000, 10, 10),
            **profile,
        ) as dataset:
            dataset.write(data)
            dataset.update_tags(**(tags or {}))
        return memfile.read()


def _open(cog: bytes):
    return MemoryFile(cog).open()


def test_s2l2a_scene_becomes_a_valid_cog_with_nodata_from_datamask():
    raw = synthetic_raw(700, 600, seed=3, nodata_fraction=0.2)
    cog = convert(raw, band_names=S2L2A_BANDS)
    checked = validate(cog)
    assert checked.valid, checked.errors
    assert checked.errors == []
    with _open(cog) as dataset:
        assert dataset.count == 7  # dataMask becomes the nodata value, not a band
        assert dataset.descriptions == S2L2A_BANDS[:-1]
        assert dataset.dtypes[0] == "uint16"
        assert dataset.nodata == 0  # L2A DN 0 (and SCL 0) mean no data
        assert dataset.mask_flag_enums[0] == [MaskFlags.nodata]
        masks = dataset.read_masks(1)
        assert not masks[:, :140].any() and masks[:, 140:].all()
        assert dataset.block_shapes[0] == (512, 512)
        assert dataset.overviews(1) == [2]
        assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert dataset.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert dataset.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        assert dataset.tags()["OVERVIEW_RESAMPLING"] == "AVERAGE (SCL: NEAREST)"
        assert dataset.tags(7)["OVERVIEW_RESAMPLING"] == "NEAREST"
        assert dataset.tags(1)["OVERVIEW_RESAMPLING"] == "AVERAGE"
        # the data survive the trip untouched where valid
        with MemoryFile(raw) as rawfile, rawfile.open() as source:
            assert np.array_equal(dataset.read(1)[:, 140:], source.read(1)[:, 140:])


def test_cog_carries_reflectance_scale_offset_and_rgb_colour_interpretation():
    cog = convert(synthetic_raw(600, 600, seed=5), band_names=S2L2A_BANDS)
    with _open(cog) as dataset:
        assert dataset.scales == (1e-4,) * 6 + (1.0,)
        # Sentinel Hub's harmonized DN: reflectance = DN / 10000, no offset
        assert dataset.offsets == (0.0,) * 7
        assert dataset.colorinterp[:3] == (ColorInterp.blue, ColorInterp.green, ColorInterp.red)
        assert set(dataset.colorinterp[3:]) == {ColorInterp.undefined}


def test_boa_add_offset_tag_becomes_the_gdal_offset():
    data = np.full((7, 300, 300), 1500, dtype=np.uint16)
    raw = _geotiff(
        data, nodata=0, tags={"BOA_ADD_OFFSET": "-1000", "BOA_QUANTIFICATION_VALUE": "10000"}
    )
    cog = convert(raw, band_names=S2L2A_BANDS[:-1])
    with _open(cog) as dataset:
        assert dataset.scales[:6] == (1e-4,) * 6 and dataset.offsets[:6] == (-0.1,) * 6
        # GDAL applies them: (1500 - 1000) / 10000 = 0.05
        value = dataset.read(4)[0, 0] * dataset.scales[3] + dataset.offsets[3]
        assert value == pytest.approx(0.05)


def test_reflectance_overviews_are_averaged_and_scl_classes_picked():
    raw = synthetic_raw(600, 600, seed=7)
    cog = convert(raw, band_names=S2L2A_BANDS)
    with _open(cog) as dataset:
        full = dataset.read(4).astype(np.float64)
        overview = dataset.read(4, out_shape=(300, 300)).astype(np.float64)
        averaged = full.reshape(300, 2, 300, 2).mean(axis=(1, 3))
        assert np.abs(overview - averaged).max() <= 1.0  # rounding of the uint16 mean
        assert np.abs(overview - full[::2, ::2]).mean() > 1.0  # not a decimation
        scl_full = dataset.read(7)
        scl_overview = dataset.read(7, out_shape=(300, 300))
        assert set(np.unique(scl_overview)) <= set(np.unique(scl_full))  # no averaged classes
        assert len(np.unique(scl_full)) > 2


def test_true_colour_bands_are_red_green_blue():
    data = np.full((4, 300, 300), 120, dtype=np.uint8)
    cog = convert(_geotiff(data), band_names=("red", "green", "blue", "alpha"))
    with _open(cog) as dataset:
        assert dataset.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        assert dataset.scales == (1.0, 1.0, 1.0) and dataset.nodata == 0


def test_small_scene_still_gets_an_internal_overview():
    cog = convert(synthetic_raw(220, 220), band_names=S2L2A_BANDS)
    assert validate(cog).valid
    with _open(cog) as dataset:
        assert dataset.overviews(1) == [2]


def test_float_scene_uses_floating_point_predictor_and_nan_nodata_for_the_mask():
    ndvi = np.linspace(-0.2, 0.9, 600 * 600, dtype=np.float32).reshape(1, 600, 600)
    mask = np.ones((1, 600, 600), dtype=np.float32)
    mask[0, :50, :] = 0
    raw = _geotiff(np.concatenate([ndvi, mask]))
    cog = convert(raw, profile="canopywatch-zstd", band_names=("ndvi", "dataMask"))
    assert validate(cog).valid
    with _open(cog) as dataset:
        structure = dataset.tags(ns="IMAGE_STRUCTURE")
        assert structure["COMPRESSION"] == "ZSTD" and structure["PREDICTOR"] == "3"
        assert dataset.count == 1 and dataset.descriptions == ("ndvi",)
        assert not dataset.read_masks(1)[:50].any()
        assert dataset.tags()["OVERVIEW_RESAMPLING"] == "AVERAGE"


def test_without_mask_band_every_band_is_kept_and_nodata_becomes_the_mask():
    data = np.full((3, 300, 300), 7, dtype=np.uint8)
    data[:, :, :30] = 0
    cog = convert(_geotiff(data, nodata=0))
    with _open(cog) as dataset:
        assert dataset.count == 3
        assert not dataset.read_masks(1)[:, :30].any()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"this is not a tiff at all", "not a readable GeoTIFF"),
        (synthetic_raw(300, 300)[:2000], "not a readable GeoTIFF"),
    ],
)
def test_corrupt_raw_files_are_reported(raw, reason):
    with pytest.raises(CogConversionError, match=reason) as caught:
        convert(raw, band_names=S2L2A_BANDS)
    assert "/vsimem/" not in str(caught.value)


def test_band_names_must_match_the_file():
    with pytest.raises(CogConversionError, match="2 band names"):
        convert(synthetic_raw(64, 64), band_names=("a", "b"))


def test_only_mask_bands_is_an_error():
    with pytest.raises(CogConversionError, match="no data bands"):
        convert(_geotiff(np.ones((1, 64, 64), np.uint8)), band_names=("dataMask",))


def test_a_plain_striped_geotiff_is_not_a_cog():
    striped = _geotiff(np.ones((1, 1200, 1200), dtype=np.uint16))
    checked = validate(striped)
    assert not checked.valid
    assert checked.errors


def test_validate_reports_unreadable_input_instead_of_raising(tmp_path):
    assert not validate(b"").valid
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"nope")
    checked = validate(garbage)
    assert not checked.valid and "not a readable GeoTIFF" in checked.errors[0]


def test_convert_and_validate_accept_paths(tmp_path):
    source = tmp_path / "raw.tif"
    source.write_bytes(synthetic_raw(128, 128))
    target = tmp_path / "cog.tif"
    target.write_bytes(convert(source))
    assert validate(target).valid


def test_profiles_are_named_and_unknown_names_are_refused():
    assert {"canopywatch-deflate", "canopywatch-zstd"} <= set(PROFILES)
    options = get_profile().creation_options("uint16")
    assert options["blockxsize"] == options["blockysize"] == 512
    assert options["tiled"] is True and options["predictor"] == 2
    assert get_profile().creation_options("float32")["predictor"] == 3
    with pytest.raises(UnknownProfileError, match="canopywatch-deflate"):
        get_profile("lzw")


@pytest.mark.parametrize(
    ("size", "levels"), [((220, 220), 1), ((1024, 1024), 1), ((2500, 2500), 3), ((1, 1), 0)]
)
def test_overview_levels(size, levels):
    assert overview_levels(*size, get_profile()) == levels


def test_scenes_converted_one_after_another_each_keep_their_own_pixels():
    # the converter hands GDAL its numpy arrays in place: nothing of one conversion may
    # reach the next one of the same size (a pooled or cached dataset over freed memory)
    first, second = synthetic_raw(600, 600, seed=11), synthetic_raw(600, 600, seed=12)
    for raw in (first, second, first):
        with MemoryFile(raw) as memfile, memfile.open() as source:
            valid = source.read(8) > 0
            expected = source.read(list(range(1, 8)))
        with MemoryFile(convert(raw, band_names=S2L2A_BANDS)) as memfile, memfile.open() as cog:
            got = cog.read()
            assert (got[:, valid] == expected[:, valid]).all()
            assert (got[:, ~valid] == 0).all()
            averaged = expected[3].astype(np.float64).reshape(300, 2, 300, 2)
            weights = valid.reshape(300, 2, 300, 2)
            count = weights.sum(axis=(1, 3))
            mean = (averaged * weights).sum(axis=(1, 3)) / np.maximum(count, 1)
            overview = cog.read(4, out_shape=(300, 300)).astype(np.float64)
            assert np.abs(overview - mean)[count > 0].max() <= 0.5  # GDAL's rounding


def test_odd_sized_scene_overviews_cover_the_edge():
    raw = synthetic_raw(301, 257, seed=5)
    cog = convert(raw, band_names=S2L2A_BANDS)
    assert validate(cog).valid
    with MemoryFile(cog) as memfile, memfile.open() as dataset:
        assert dataset.overviews(1) == [2]
        edge = dataset.read(1, out_shape=(129, 151))  # ceil(257 / 2) x ceil(301 / 2)
        assert edge[-1].any() and edge[:, -1].any()
