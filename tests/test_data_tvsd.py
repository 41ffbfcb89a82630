"""TVSD reader and NWB converter on tiny files with the published layout."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import sha256, tvsd_files

import irfa_nwb
import irfa_nwb.data
import irfa_nwb.data.tvsd
from irfa_nwb.data import average_repeats, load_dataset, select_units, split_stimuli
from irfa_nwb.data.tvsd import (
    MONKEY_F_ARRAY_AREAS,
    MONKEY_N_ARRAY_AREAS,
    convert_tvsd,
    load_tvsd,
    read_things_paths,
)
from irfa_nwb.errors import InputError, NWBLayoutError

AREAS = {1: "V1", 2: None, 3: "IT"}


@pytest.fixture(scope="module")
def tvsd(tmp_path_factory):
    return tvsd_files(tmp_path_factory.mktemp("tvsd"))


def test_array_maps():
    n = MONKEY_N_ARRAY_AREAS
    assert [a for a, v in n.items() if v == "V1"] == [1, 2, 3, 4, 5, 7, 8]
    assert n[6] is None
    assert [a for a, v in n.items() if v == "V4"] == [9, 10, 11, 12]
    assert [a for a, v in n.items() if v == "IT"] == [13, 14, 15, 16]
    # norm_MUA.m, monkey F: channels 1-512 V1, 513-832 IT, 833-1024 V4
    f = MONKEY_F_ARRAY_AREAS
    assert [f[a] for a in range(1, 17)] == ["V1"] * 8 + ["IT"] * 5 + ["V4"] * 3


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        (irfa_nwb.data.tvsd, "TVSD_ARRAY_AREAS_N", "MONKEY_N_ARRAY_AREAS"),
        (irfa_nwb.data, "TVSD_ARRAY_AREAS_N", "MONKEY_N_ARRAY_AREAS"),
        (irfa_nwb.data, "load_tvsd", "load_tvsd"),
        (irfa_nwb.data, "convert_tvsd", "convert_tvsd"),
        (irfa_nwb, "load_tvsd", "load_tvsd"),
        (irfa_nwb, "convert_tvsd", "convert_tvsd"),
    ],
)
def test_moved_names_warn_and_still_work(module, old, new):
    with pytest.warns(FutureWarning, match="irfa_nwb.data.tvsd"):
        value = getattr(module, old)
    assert value is getattr(irfa_nwb.data.tvsd, new)
    assert old not in irfa_nwb.data.__all__


def test_read_things_paths(tvsd):
    train, test = read_things_paths(tvsd["images_file"])
    assert train == tvsd["train_paths"] and test == tvsd["test_paths"]


def test_load_tvsd_responses_units_split(tvsd):
    ds = load_tvsd(tvsd["mua"], array_areas=AREAS, channels_per_array=4, images=False,
                   test_repeats=True)
    r = ds["responses"]
    keep = [0, 1, 2, 3, 8, 9, 10, 11]  # array 2 left out
    np.testing.assert_array_equal(r["unit_id"].values, keep)
    assert list(r["area"].values) == ["V1"] * 4 + ["IT"] * 4
    assert list(r["electrode_group"].values) == ["array01"] * 4 + ["array03"] * 4
    # 6 training images shown once, 2 test images x 3 repeats minus one missing repeat
    assert r.dims == ("stimulus_id", "repeat", "unit") and r.sizes["repeat"] == 3
    np.testing.assert_array_equal(r["stimulus_id"].values, np.arange(8))
    np.testing.assert_array_equal(r.values[:6, 0], tvsd["train"][:, keep])
    assert np.isnan(r.values[:6, 1:]).all()
    np.testing.assert_array_equal(r.values[6], tvsd["reps"][:, 0][:, keep])
    np.testing.assert_array_equal(r.values[7], tvsd["reps"][:, 1][:, keep])
    assert np.isfinite(r.values[7]).all() and np.isnan(r.values[6]).any()
    assert list(ds["split"].values) == ["train"] * 6 + ["test"] * 2
    avg = average_repeats(ds)
    np.testing.assert_allclose(avg["responses"].values[6],
                               np.nanmean(tvsd["reps"][:, 0], 0)[keep], rtol=1e-6)
    np.testing.assert_array_equal(avg["n_repeats"].values, [1] * 6 + [2, 3])
    for c in ("reliability", "snr", "oracle", "latency"):
        assert ds[c].dims == ("unit",) and np.isfinite(ds[c].values).all()
    train, test = split_stimuli(ds)
    assert set(test["stimulus_id"].values.tolist()) == {6, 7}
    assert select_units(ds, min_reliability=0.5).sizes["unit"] == int(
        (ds["reliability"].values > 0.5).sum()
    )
    ds_all = load_tvsd(
        tvsd["mua"],
        array_areas=AREAS,
        channels_per_array=4,
        include_unmapped=True,
        test_repeats=False,
    )
    assert ds_all["responses"].sizes == {"stimulus_id": 8, "repeat": 1, "unit": 12}


def test_load_tvsd_images_and_channel_order(tvsd):
    ds = load_tvsd(
        tvsd["mua"],
        images_file=tvsd["images_file"],
        image_root=tvsd["root"],
        array_areas=AREAS,
        channels_per_array=4,
    )
    np.testing.assert_array_equal(ds["images"].values, tvsd["pixels"])
    assert list(ds["things_path"].values) == tvsd["train_paths"] + tvsd["test_paths"]
    order = np.arange(12)[::-1]
    rev = load_tvsd(
        tvsd["mua"],
        array_areas={1: "V1", 2: "V4", 3: "IT"},
        channels_per_array=4,
        channel_order=order,
    )
    np.testing.assert_array_equal(rev["responses"].values[:6, 0], tvsd["train"][:, ::-1])
    small = load_tvsd(
        tvsd["mua"],
        images=tvsd["pixels"],
        image_size=(4, 4),
        array_areas=AREAS,
        channels_per_array=4,
    )
    assert small["images"].shape == (8, 4, 4, 3)


def test_load_tvsd_errors(tvsd, tmp_path):
    with pytest.raises(InputError, match="no area for arrays"):
        load_tvsd(tvsd["mua"], array_areas={1: "V1"}, channels_per_array=4)
    with pytest.raises(InputError, match="whole number of arrays"):
        load_tvsd(tvsd["mua"])  # 12 electrodes, 64 per array
    with pytest.raises(InputError, match="3 images given but TVSD has 6 train"):
        load_tvsd(tvsd["mua"], images=tvsd["pixels"][:3], array_areas=AREAS, channels_per_array=4)
    bad = tmp_path / "old.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    with pytest.raises(InputError, match="v7.3"):
        load_tvsd(bad)
    with pytest.raises(NWBLayoutError, match="train_imgs"):
        read_things_paths(tvsd["mua"])
    with pytest.raises(FileNotFoundError, match="missing"):
        load_tvsd(
            tvsd["mua"],
            images_file=tvsd["images_file"],
            image_root=tmp_path,
            array_areas=AREAS,
            channels_per_array=4,
        )


def test_convert_tvsd_roundtrip_and_inspector(tvsd, tmp_path):
    before = {k: sha256(tvsd[k]) for k in ("mua", "images_file")}
    out = tmp_path / "tvsd.nwb"
    path = convert_tvsd(
        tvsd["mua"],
        out,
        images_file=tvsd["images_file"],
        image_root=tvsd["root"],
        image_size=None,
        array_areas=AREAS,
        channels_per_array=4,
        subject_id="N",
        age="P9Y",
    )
    assert path == out and out.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp.nwb")]
    ref = load_tvsd(
        tvsd["mua"],
        images_file=tvsd["images_file"],
        image_root=tvsd["root"],
        array_areas=AREAS,
        channels_per_array=4,
    )
    ds = load_dataset(out)
    assert ds.attrs["responses_source"] == "processing/ecephys/normMUA"
    np.testing.assert_array_equal(ds["responses"].values, ref["responses"].values)
    np.testing.assert_array_equal(ds["stimulus_id"].values, ref["stimulus_id"].values)
    np.testing.assert_array_equal(ds["split"].values, ref["split"].values)
    np.testing.assert_array_equal(ds["unit_id"].values, ref["unit_id"].values)
    np.testing.assert_array_equal(ds["area"].values, ref["area"].values)
    np.testing.assert_array_equal(ds["electrode_group"].values, ref["electrode_group"].values)
    np.testing.assert_array_equal(ds["images"].values, tvsd["pixels"])
    via_table = load_dataset(out, presentations="tvsd_presentations")
    np.testing.assert_array_equal(via_table["responses"].values, ref["responses"].values)
    np.testing.assert_array_equal(via_table["split"].values, ref["split"].values)
    np.testing.assert_array_equal(via_table["images"].values, tvsd["pixels"])

    nwbinspector = pytest.importorskip("nwbinspector")
    messages = [m for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(out)) if m is not None]
    assert not messages, [f"{m.check_function_name}: {m.message}" for m in messages]
    assert {k: sha256(tvsd[k]) for k in ("mua", "images_file")} == before
    kwargs = {"images": tvsd["pixels"], "array_areas": AREAS, "channels_per_array": 4}
    with pytest.raises(InputError, match="age"):
        convert_tvsd(tvsd["mua"], tmp_path / "y.nwb", **kwargs)
    with pytest.raises(InputError, match="already exists"):
        convert_tvsd(tvsd["mua"], out, age="P9Y", **kwargs)
    kwargs.pop("images")
    with pytest.raises(InputError, match="needs the images"):
        convert_tvsd(tvsd["mua"], tmp_path / "x.nwb", age="P9Y", **kwargs)
    assert not (tmp_path / "x.nwb").exists()
    assert not (tmp_path / "y.nwb").exists()
