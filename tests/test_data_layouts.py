"""Allen layouts (DANDI:000021, DANDI:000713), movie frames, images from folders, stimuli lists."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import allen_behavior_file, allen_coding_file, generic_file

from irfa_nwb.data import list_stimulus_tables, load_dataset, stack_presentations
from irfa_nwb.errors import InputError, NWBLayoutError


@pytest.fixture(scope="module")
def coding(tmp_path_factory):
    return allen_coding_file(tmp_path_factory.mktemp("allen") / "coding.nwb")


@pytest.fixture(scope="module")
def behavior(tmp_path_factory):
    return allen_behavior_file(tmp_path_factory.mktemp("allen") / "behavior.nwb")


def test_natural_scenes_need_images(coding):
    with pytest.raises(NWBLayoutError, match="not in the file; pass them with images="):
        load_dataset(coding["path"])


def test_natural_scenes_with_array_images_blanks_dropped(coding):
    imgs = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    ds = load_dataset(coding["path"], images=imgs, window=(0.0, 0.2))
    keep = coding["frames"] >= 0
    pres = stack_presentations(ds)
    np.testing.assert_array_equal(pres["stimulus_id"].values, coding["frames"][keep].astype(int))
    np.testing.assert_array_equal(pres["start_time"].values, coding["onsets"][keep])
    np.testing.assert_array_equal(pres.values, coding["counts"][keep])
    np.testing.assert_array_equal(ds["unit_id"].values, [100, 101, 102, 103, 104])
    assert list(ds["area"].values) == coding["areas_of_units"]  # via peak_channel_id
    assert list(ds["electrode_group"].values) == coding["groups_of_units"]
    assert ds.attrs["n_dropped_presentations"] == 2
    assert ds.attrs["presentations_source"] == "intervals/natural_scenes_presentations"
    assert ds.attrs["image_column"] == "frame"
    assert ds["images"].shape == (3, 4, 4, 1)
    with pytest.raises(InputError, match="2 presentations .* are blanks"):
        load_dataset(coding["path"], images=imgs, keep_blank=True)


def test_keep_blank_without_images(coding):
    ds = load_dataset(coding["path"], images=False, keep_blank=True)
    pres = stack_presentations(ds)
    assert pres.sizes["presentation"] == 10
    assert (pres["stimulus_id"].values == -1).sum() == 2


def test_allen_quality_preset(coding):
    ds = load_dataset(coding["path"], images=False, quality="allen")
    # unit 101: amplitude_cutoff 0.2; 102: noise; 104: presence 0.5
    np.testing.assert_array_equal(ds["unit_id"].values, [100, 103])
    ds = load_dataset(coding["path"], images=False, quality={"presence_ratio": (">=", 0.9)})
    np.testing.assert_array_equal(ds["unit_id"].values, [100, 101, 102, 103])
    with pytest.raises(NWBLayoutError, match="snr"):
        load_dataset(coding["path"], images=False, quality={"snr": (">", 1)})


def test_images_from_folder_and_file_list(coding, tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, size=(3, 6, 5, 3), dtype=np.uint8)
    folder = tmp_path / "scenes"
    folder.mkdir()
    for i, p in enumerate(pix):
        iio.imwrite(folder / f"scene_{i:03d}.png", p)
    (folder / "notes.txt").write_text("not an image")
    ds = load_dataset(coding["path"], images=folder)
    np.testing.assert_array_equal(ds["images"].values, pix)
    assert list(ds["image_name"].values) == ["scene_000", "scene_001", "scene_002"]
    files = [folder / "scene_002.png", folder / "scene_001.png", folder / "scene_000.png"]
    ds = load_dataset(coding["path"], images=files)
    np.testing.assert_array_equal(ds["images"].values, pix[::-1])
    with pytest.raises(InputError, match="only 2 images"):
        load_dataset(coding["path"], images=files[:2])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no image files"):
        load_dataset(coding["path"], images=empty)


def test_movie_frames_with_latency(coding):
    frames = np.zeros((4, 3, 3), dtype=np.uint8)
    ds = load_dataset(
        coding["path"],
        presentations="natural_movie_one_presentations",
        images=frames,
        window=(0.0, 1 / 30),
        latency=0.05,
    )
    pres = stack_presentations(ds)
    np.testing.assert_array_equal(pres["stimulus_id"].values, np.arange(8) % 4)
    assert ds.attrs["latency"] == 0.05
    np.testing.assert_array_equal(pres["start_time"].values, coding["movie_onsets"])


def test_ambiguous_and_unusable_tables(coding):
    with pytest.raises(NWBLayoutError, match="orientation"):
        load_dataset(coding["path"], presentations="static_gratings_presentations", images=False)
    ds = load_dataset(
        coding["path"],
        presentations="static_gratings_presentations",
        image_column="orientation",
        images=False,
    )
    np.testing.assert_array_equal(ds["stimulus_id"].values, [45])
    table = list_stimulus_tables(coding["path"])
    assert list(table["name"])[0] == "natural_scenes_presentations"
    row = table.set_index("name").loc["static_gratings_presentations"]
    assert not row["usable"] and "no image column" in row["note"]
    row = table.set_index("name").loc["natural_movie_one_presentations"]
    assert row["usable"] and row["image_column"] == "frame"


def test_allen_behavior_templates_by_index_and_name(behavior):
    ds = load_dataset(behavior["path"], window=(0.0, 0.1))
    pres = stack_presentations(ds)
    np.testing.assert_array_equal(pres["stimulus_id"].values, behavior["index"])
    shown = np.unique(behavior["index"])
    np.testing.assert_array_equal(ds["images"].values[..., 0], behavior["pixels"][shown])
    assert list(ds["image_name"].values) == [behavior["names"][i] for i in shown]
    np.testing.assert_array_equal(pres.values, np.ones((5, 2)))
    assert list(ds["area"].values) == ["VISam", "VISam"]
    ds = load_dataset(behavior["path"], image_column="image_name")
    names = np.array(behavior["names"])[behavior["index"]]
    pres = stack_presentations(ds)
    np.testing.assert_array_equal(pres["stimulus_id"].values, names)
    np.testing.assert_array_equal(ds["images"]["stimulus_id"].values, np.unique(names))
    per_pres = ds["images"].sel(stimulus_id=pres["stimulus_id"].values).values[..., 0]
    np.testing.assert_array_equal(per_pres, behavior["pixels"][behavior["index"]])


def test_named_keys_need_named_images(behavior):
    with pytest.raises(InputError, match="unnamed"):
        load_dataset(
            behavior["path"], image_column="image_name", images=np.zeros((3, 2, 2), dtype=np.uint8)
        )
    with pytest.raises(InputError, match="not among"):
        load_dataset(
            behavior["path"],
            image_column="image_name",
            images={"im061": np.zeros((2, 2), dtype=np.uint8)},
        )


def test_list_stimulus_tables_generic(tmp_path):
    truth = generic_file(tmp_path / "g.nwb", mua=False)
    table = list_stimulus_tables(truth["path"])
    assert table.iloc[0]["kind"] == "IndexSeries"
    assert table.iloc[0]["images_in_file"] == "images"
    assert bool(table.iloc[0]["usable"])


def test_numbered_tiff_folder_sorted_numerically(tmp_path):
    tifffile = pytest.importorskip("tifffile")

    from irfa_nwb.data.images import read_images

    folder = tmp_path / "natural_scenes"
    folder.mkdir()
    for i in (0, 1, 2, 10, 11):
        tifffile.imwrite(folder / f"{i}.tiff", np.full((3, 4), i, dtype=np.uint8))
    got = read_images(folder)
    assert list(got.names) == ["0", "1", "2", "10", "11"]
    np.testing.assert_array_equal(got.pixels[:, 0, 0, 0], [0, 1, 2, 10, 11])
