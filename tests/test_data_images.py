"""Images: NWB containers, embedded image series, arrays, mappings, DataArrays; stimuli choice."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from data_helpers import add_electrodes, add_images, new_nwbfile, write

from irfa_nwb.data import list_stimulus_tables, load_dataset, stack_presentations
from irfa_nwb.data.images import read_images
from irfa_nwb.errors import InputError, NWBLayoutError


def _file_with_units(nwb, onsets):
    add_electrodes(nwb, {"arrayA": ("V1", 1)}, rf=False)
    nwb.add_unit(spike_times=np.sort(np.asarray(onsets) + 0.05), electrodes=[0])


def test_embedded_image_series_one_presentation_per_frame(tmp_path):
    from pynwb.image import ImageSeries

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(4, 5, 6), dtype=np.uint8)
    onsets = [1.0, 2.0, 3.0, 4.0]
    nwb = new_nwbfile("embedded")
    nwb.add_stimulus(
        ImageSeries(
            name="movie",
            data=frames,
            unit="N/A",
            timestamps=onsets,
            format="raw",
            description="frames",
        )
    )
    _file_with_units(nwb, onsets)
    path = write(nwb, tmp_path / "embedded.nwb")
    ds = load_dataset(path, window=(0.0, 0.1))
    np.testing.assert_array_equal(ds["stimulus_id"].values, [0, 1, 2, 3])
    np.testing.assert_array_equal(ds["images"].values[..., 0], frames)
    np.testing.assert_array_equal(ds["responses"].values[:, 0, 0], [1, 1, 1, 1])
    assert ds.attrs["presentations_source"] == "stimulus/movie"


def test_float_grayscale_images_and_ambiguous_sources(tmp_path):
    from pynwb.image import IndexSeries

    nwb = new_nwbfile("float")
    pix = np.linspace(0, 1, 2 * 3 * 3).reshape(2, 3, 3).astype(np.float32)
    images = add_images(nwb, pix)
    for name in ("first", "second"):
        nwb.add_stimulus(
            IndexSeries(
                name=name,
                data=np.array([0, 1], np.uint32),
                indexed_images=images,
                unit="N/A",
                timestamps=[1.0, 2.0],
            )
        )
    _file_with_units(nwb, [1.0, 2.0])
    path = write(nwb, tmp_path / "float.nwb")
    with pytest.raises(NWBLayoutError, match=r"several stimulus sources.*first.*second"):
        load_dataset(path)
    ds = load_dataset(path, presentations="second")
    assert ds["images"].dtype == np.float32
    np.testing.assert_allclose(ds["images"].values[..., 0], pix)
    assert len(list_stimulus_tables(path)) == 2


def test_read_images_forms():
    arr = np.zeros((2, 3, 3, 4), dtype=np.uint8)
    assert read_images(arr).pixels.shape == (2, 3, 3, 3)  # alpha dropped
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        read_images(np.full((1, 2, 2), 3.0))
    with pytest.raises(InputError, match="shape"):
        read_images(np.zeros((2, 3)))
    img16 = np.full((1, 2, 2), 65535, dtype=np.uint16)
    np.testing.assert_allclose(read_images(img16).pixels, 1.0)
    mixed = {"a": np.zeros((2, 2), np.uint8), "b": np.zeros((3, 3), np.uint8)}
    with pytest.raises(InputError, match="image_size"):
        read_images(mixed)
    resized = read_images(mixed, image_size=(4, 4))
    assert resized.pixels.shape == (2, 4, 4, 1) and list(resized.names) == ["a", "b"]
    # the loader resizes exactly as the estimator resizes its targets (torch antialias bilinear)
    torch = pytest.importorskip("torch")
    big = np.random.default_rng(0).integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
    got = read_images({"big": big, "small": big[:4, :4]}, image_size=(5, 4)).pixels[0]
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(big / 255.0).permute(2, 0, 1)[None], size=(5, 4), mode="bilinear",
        antialias=True, align_corners=False,
    )[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, ref, atol=2e-6)
    gray_rgb = {"g": np.zeros((2, 2), np.uint8), "c": np.zeros((2, 2, 3), np.uint8)}
    assert read_images(gray_rgb).pixels.shape == (2, 2, 2, 3)
    da = xr.DataArray(
        np.zeros((2, 2, 2, 1), np.uint8),
        dims=("stimulus_id", "y", "x", "channel"),
        coords={"stimulus_id": ("stimulus_id", ["x", "y"])},
    )
    assert list(read_images(da).names) == ["x", "y"]
    with pytest.raises(InputError, match="must be an array"):
        read_images(42)
    with pytest.raises(FileNotFoundError):
        read_images(["/nonexistent/a.png"])


def test_index_series_over_an_image_series(tmp_path, monkeypatch):
    """Older files index an ImageSeries (indexed_timeseries) instead of Images."""
    import warnings

    import pynwb.core
    from pynwb.image import ImageSeries, IndexSeries

    # pynwb 4 refuses to *create* this deprecated form (it still reads it): allow it here
    monkeypatch.setattr(
        pynwb.core.NWBMixin, "_error_on_new_pass_on_construct", lambda self, error_msg: None
    )

    frames = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2)
    nwb = new_nwbfile("indexed-ts")
    template = ImageSeries(name="frames", data=frames, unit="N/A", rate=1.0, format="raw")
    nwb.add_stimulus_template(template)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nwb.add_stimulus(
            IndexSeries(
                name="shown",
                data=np.array([2, 0], np.uint32),
                indexed_timeseries=template,
                unit="N/A",
                timestamps=[1.0, 2.0],
            )
        )
    _file_with_units(nwb, [1.0, 2.0])
    path = write(nwb, tmp_path / "its.nwb")
    ds = load_dataset(path)
    np.testing.assert_array_equal(stack_presentations(ds)["stimulus_id"].values, [2, 0])
    # the images of the stimuli shown (frame 1 never was), on the shared stimulus_id index
    np.testing.assert_array_equal(ds["stimulus_id"].values, [0, 2])
    np.testing.assert_array_equal(ds["images"].values[..., 0], frames[[0, 2]])
