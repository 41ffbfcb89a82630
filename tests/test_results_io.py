"""irfa_nwb.results: pure NWB I/O of evaluations — exact round trip, names by stimulus id,
nwbinspector, provenance, source safety, overwrite and append rules."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pynwb = pytest.importorskip("pynwb")

from irfa_nwb import evaluate  # noqa: E402
from irfa_nwb.data import ImageSet, build_dataset  # noqa: E402
from irfa_nwb.errors import InputError, NWBLayoutError  # noqa: E402
from irfa_nwb.imaging import resize_images, to_float_images  # noqa: E402
from irfa_nwb.results import read_results, write_results  # noqa: E402

SIZE = 8
HEADS = ["arrayA", "arrayB", "arrayC"]
AREAS = {"arrayA": "V1", "arrayB": "V1", "arrayC": "IT"}
STIM_IDS = np.array([13, 11, 15, 10, 14, 12])  # stored out of id order on purpose
N_CH = 4


class FakeIRFA:
    """Follows the fitted IRFA contract with cheap deterministic maths."""

    def __init__(self, n_units: int = 6):
        rng = np.random.default_rng(1)
        self.heads_ = list(HEADS)
        self.head_units_ = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]
        self.head_areas_ = [AREAS[h] for h in HEADS]
        self.unit_ids_ = np.arange(n_units)
        self.image_size_ = SIZE
        self.device_ = "cpu"
        self.training_stimulus_ids_ = np.array([10, 11])
        self.w_img = rng.standard_normal((n_units, SIZE * SIZE * 3)) * 0.3
        self.w_sp = rng.standard_normal((n_units, len(HEADS) * SIZE * SIZE)) * 0.3
        self.w_ft = rng.standard_normal((n_units, len(HEADS) * N_CH))
        self.history_ = [
            {"epoch": e + 1, "loss_generator": 1.0 / (e + 1), "val_loss": float("nan"),
             "time": 0.1 * e, "note": "text is skipped"}
            for e in range(3)
        ]

    def get_params(self, deep=True):
        return {"n_channels": 32, "lr": 7.8e-4, "betas": (0.5, 0.999), "device": None,
                "verbose": False, "name": "irfa", "callback": print}

    def _x(self, X):
        return np.asarray(X, dtype=np.float64)

    def predict(self, X):
        x = self._x(X)
        img = 1 / (1 + np.exp(-(x @ self.w_img)))
        return img.reshape(len(x), SIZE, SIZE, 3).astype(np.float32)

    def spatial_irfs(self, X):
        x = self._x(X)
        s = (x @ self.w_sp).reshape(len(x), len(HEADS), SIZE, SIZE)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def feature_irfs(self, X):
        x = self._x(X)
        return np.abs(x @ self.w_ft).reshape(len(x), len(HEADS), N_CH).astype(np.float32)


def make_source_nwb(path: Path, pixels: np.ndarray) -> None:
    """A recording whose image container holds the images in STIM_IDS order."""
    from pynwb.base import ImageReferences, Images
    from pynwb.file import Subject
    from pynwb.image import RGBImage

    nwb = pynwb.NWBFile(
        session_description="tiny test recording of visual responses",
        identifier="source-recording-0001",
        session_start_time=datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc),
        experimenter=["Doe, Jane"],
        institution="Test Institute",
        experiment_description="natural images shown to a test animal",
        keywords=["vision", "test"],
        subject=Subject(subject_id="monkey1", species="Macaca mulatta", sex="M", age="P5Y",
                        description="test subject"),
    )
    imgs = [RGBImage(name=f"stimulus_{s}", data=pixels[i], description=f"image {s}")
            for i, s in enumerate(STIM_IDS)]
    nwb.add_stimulus_template(
        Images(name="images", images=imgs, description="natural images",
               order_of_images=ImageReferences(name="order_of_images", data=imgs))
    )
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def make_dataset(path: Path, pixels: np.ndarray) -> xr.Dataset:
    rng = np.random.default_rng(0)
    groups = [h for h in HEADS for _ in range(2)]
    units = pd.DataFrame({"unit_id": np.arange(6), "electrode_group": groups,
                          "area": [AREAS[g] for g in groups]})
    shown = rng.permutation(np.repeat(STIM_IDS, 2))  # two repeats, scrambled order
    values = rng.standard_normal((len(shown), 6)).astype(np.float32)
    names = np.array([f"stimulus_{s}" for s in STIM_IDS])
    # presentations name their images; the file holds them in STIM_IDS order
    ds = build_dataset(values, units, names[[list(STIM_IDS).index(s) for s in shown]],
                       np.arange(len(shown)) * 0.5, ImageSet(pixels, names, "images"),
                       {"source": str(path), "nwb_identifier": "source-recording-0001",
                        "window": [0.0, 0.2], "responses_kind": "spike_count"})
    # integer stimulus ids, as the loader gives for indexed images
    ids = np.array([int(n.split("_")[1]) for n in ds["stimulus_id"].values])
    return ds.assign_coords(stimulus_id=ids)


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(3)
    pixels = (rng.random((len(STIM_IDS), 12, 12, 3)) * 255).astype(np.uint8)
    src = tmp_path / "source.nwb"
    make_source_nwb(src, pixels)
    ds = make_dataset(src, pixels)
    est = FakeIRFA()
    return src, ds, est, evaluate(est, ds, spatial_per_stimulus=True), pixels


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_is_exact(setup, tmp_path):
    src, ds, est, res, _ = setup
    before = _sha(src)
    out = write_results(tmp_path / "results.nwb", res)
    assert out == (tmp_path / "results.nwb").absolute() and out.is_file()
    assert _sha(src) == before  # source untouched, byte for byte
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left
    back = read_results(out)
    xr.testing.assert_identical(back.drop_attrs(), res.drop_attrs())
    for key in ("model", "model_params", "mean_pixel_r", "n_train_stimuli"):
        assert back.attrs[key] == res.attrs[key]
    # what evaluate computed: the fake's outputs on the repeat-averaged responses
    X = ds["responses"].mean("repeat").values
    np.testing.assert_array_equal(back["reconstruction"].values, est.predict(X))
    np.testing.assert_array_equal(back["feature_irf_per_stimulus"].values,
                                  est.feature_irfs(X).astype(np.float64))
    assert list(back["head"].values) == HEADS
    assert list(back["head_area"].values) == ["V1", "V1", "IT"]
    # typed configuration; numeric history only, quantities never measured left out
    cfg = back.attrs["model_params"]
    assert cfg["n_channels"] == 32 and cfg["betas"] == [0.5, 0.999] and cfg["device"] is None
    assert cfg["verbose"] is False and cfg["callback"] == "print"
    np.testing.assert_allclose(back["history_loss_generator"].values, [1.0, 0.5, 1 / 3])
    assert "history_val_loss" not in back and "history_note" not in back


def test_images_are_named_and_ordered_by_stimulus_id(setup, tmp_path):
    """Every per-stimulus image is named after its stimulus id and holds that stimulus: the
    source stores its images out of id order, and the results must not pair them wrongly."""
    src, _, _, res, pixels = setup
    out = write_results(tmp_path / "results.nwb", res)
    targets = resize_images(to_float_images(pixels), SIZE)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        stimuli = nwb.analysis["irfa_stimuli"]
        recon = nwb.analysis["irfa_reconstructions"]
        for i, s in enumerate(STIM_IDS):
            image = stimuli.images[f"stimulus_{s}"]
            np.testing.assert_allclose(image.data[:], targets[i], atol=1e-6)
            assert f"stimulus_id {s}" in image.description
            assert f"stimulus_id {s}" in recon.images[f"stimulus_{s}"].description
        table = nwb.analysis["irfa_per_stimulus_id"]
        ids = list(table["stimulus_id"].data[:])
        roles = [r.decode() if isinstance(r, bytes) else r
                 for r in table["stimulus_role"].data[:]]
        assert dict(zip(ids, roles, strict=True))[10] == "train"
        assert dict(zip(ids, roles, strict=True))[15] == "held_out"
        order = [img.name for img in stimuli.order_of_images.data[:]]
        assert order == [f"stimulus_{s}" for s in sorted(STIM_IDS)]


def test_large_sources_are_not_hashed_by_default(setup, tmp_path, monkeypatch):
    from irfa_nwb.results import writer

    src, _, _, res, _ = setup
    size = src.stat().st_size
    monkeypatch.setattr(writer, "AUTO_CHECKSUM_LIMIT", size - 1)  # the source is "too large"
    skipped = read_results(write_results(tmp_path / "auto.nwb", res)).attrs["source"]
    assert "source_sha256" not in skipped
    assert skipped["source_size"] == size
    mtime = datetime.fromisoformat(skipped["source_mtime"]).timestamp()
    assert mtime == pytest.approx(src.stat().st_mtime, abs=1e-3)
    forced = read_results(write_results(tmp_path / "forced.nwb", res, checksum=True))
    assert forced.attrs["source"]["source_sha256"] == _sha(src)
    monkeypatch.setattr(writer, "AUTO_CHECKSUM_LIMIT", size)
    small = read_results(write_results(tmp_path / "small.nwb", res)).attrs["source"]
    assert small["source_sha256"] == _sha(src)
    never = read_results(write_results(tmp_path / "never.nwb", res, checksum=False))
    assert "source_sha256" not in never.attrs["source"]
    with pytest.raises(InputError, match="checksum must be"):
        write_results(tmp_path / "bad.nwb", res, checksum="yes")
    assert not (tmp_path / "bad.nwb").exists()


def test_provenance_names_the_source_and_its_checksum(setup, tmp_path):
    src, _, _, res, _ = setup
    out = write_results(tmp_path / "results.nwb", res)
    back = read_results(out)
    record = back.attrs["source"]
    assert record["source"] == str(src.absolute())
    assert record["source_sha256"] == _sha(src)
    assert record["nwb_identifier"] == "source-recording-0001"
    assert record["responses_kind"] == "spike_count"
    assert back.attrs["model"]["class"].endswith("FakeIRFA")
    np.testing.assert_array_equal(back["model_unit_id"].values, np.arange(6))
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "monkey1"  # session metadata from the source
        assert nwb.session_start_time == datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
        assert nwb.identifier != "source-recording-0001"
        assert "area IT" in nwb.analysis["irfa_spatial_irfs"].images["arrayC"].description


def test_nwbinspector_clean(setup, tmp_path):
    nwbinspector = pytest.importorskip("nwbinspector")
    *_, res, _ = setup
    out = write_results(tmp_path / "results.nwb", res)
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out)))
    assert messages == [], [(m.check_function_name, m.message, m.location) for m in messages]
    dandi = nwbinspector.load_config("dandi")
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out), config=dandi))
    assert messages == [], [(m.check_function_name, m.message, m.location) for m in messages]


def test_string_ids_ridge_like_estimators_and_metrics_off(setup, tmp_path):
    _, ds, est, _, _ = setup
    named = ds.assign_coords(stimulus_id=[f"img:{s}" for s in ds["stimulus_id"].values])

    class PredictOnly:
        def predict(self, X):
            return est.predict(X)

        def get_params(self, deep=True):
            return {}

    res = evaluate(PredictOnly(), named, metrics=False)
    assert "spatial_irf" not in res and "pixel_r" not in res
    assert set(res["stimulus_role"].values) == {"unknown"}
    out = write_results(tmp_path / "r.nwb", res)
    back = read_results(out)
    xr.testing.assert_identical(back.drop_attrs(), res.drop_attrs())
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert "stimulus_img_10" in io.read().analysis["irfa_reconstructions"].images


def test_write_results_takes_an_evaluation(setup, tmp_path):
    _, ds, est, _, _ = setup
    with pytest.raises(InputError, match="evaluate"):
        write_results(tmp_path / "r.nwb", est)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="predict"):
        evaluate(object(), ds)


def test_refuses_overwrite_source_path_and_unwritable_folders(setup, tmp_path):
    src, _, _, res, _ = setup
    out = write_results(tmp_path / "results.nwb", res)
    with pytest.raises(InputError, match="overwrite=True"):
        write_results(out, res)
    write_results(out, res, overwrite=True)
    before = _sha(src)
    with pytest.raises(InputError, match="source recording"):
        write_results(src, res, overwrite=True)
    assert _sha(src) == before
    with pytest.raises(InputError, match="does not exist"):
        write_results(tmp_path / "missing" / "r.nwb", res)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(InputError, match="not writable"):
                write_results(locked / "r.nwb", res)
        finally:
            locked.chmod(0o700)


def test_append_safe_local_file(setup):
    src, _, _, res, _ = setup
    write_results(src, res, append=True)
    back = read_results(src)
    assert back["reconstruction"].shape == (len(STIM_IDS), SIZE, SIZE, 3)
    with pynwb.NWBHDF5IO(str(src), "r") as io:
        nwb = io.read()
        assert nwb.identifier == "source-recording-0001"
        assert "images" in nwb.stimulus_template  # original content kept
    with pytest.raises(InputError, match="already holds results"):
        write_results(src, res, append=True)


def test_append_refused_when_unsafe(setup, tmp_path):
    import h5py

    src, _, _, res, _ = setup
    with h5py.File(src, "a") as f:  # older schema: appending would upgrade it silently
        f.attrs["nwb_version"] = "2.5.0"
    before = _sha(src)
    with pytest.raises(InputError, match="schema 2.5.0"):
        write_results(src, res, append=True)
    assert _sha(src) == before
    remote = res.copy()
    remote.attrs["source"] = {"source": "dandi://000021@0.1/sub-x/x.nwb"}
    with pytest.raises(InputError, match="not come from a local file"):
        write_results(src, remote, append=True)
    other = tmp_path / "other.nwb"
    other.write_bytes(src.read_bytes())
    with pytest.raises(InputError, match="come from"):
        write_results(other, res, append=True)
    with pytest.raises(InputError, match="not a local file"):
        write_results(tmp_path / "missing.nwb", res, append=True)


def test_read_errors(tmp_path, setup):
    src, *_ = setup
    with pytest.raises(NWBLayoutError, match="no IRFA results"):
        read_results(src)
    with pytest.raises(InputError, match="does not exist"):
        read_results(tmp_path / "nope.nwb")


def test_remote_source_metadata_failure_warns(setup, tmp_path, monkeypatch):
    import contextlib

    import irfa_nwb.data

    *_, res, _ = setup
    remote = res.copy()
    remote.attrs["source"] = {"source": "dandi://000001@0.1/sub-x/sub-x.nwb"}

    @contextlib.contextmanager
    def offline(*args, **kwargs):
        raise OSError("network unreachable")
        yield  # pragma: no cover

    monkeypatch.setattr(irfa_nwb.data, "open_nwb", offline)
    with pytest.warns(UserWarning, match="network unreachable"):
        out = write_results(tmp_path / "r.nwb", remote)
    back = read_results(out)
    assert back.attrs["source"]["source"] == "dandi://000001@0.1/sub-x/sub-x.nwb"
    assert "source_sha256" not in back.attrs["source"]
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert io.read().subject is None
    out = write_results(tmp_path / "r2.nwb", remote, source_metadata=False)  # no network
    assert out.is_file()


def test_open_nwbfile_as_source(setup, tmp_path):
    src, _, _, res, _ = setup
    bare = res.copy()
    bare.attrs["source"] = {}
    with pynwb.NWBHDF5IO(str(src), "r") as io:
        nwb = io.read()
        out = write_results(tmp_path / "r.nwb", bare, source=nwb)
    back = read_results(out)
    assert back.attrs["source"]["nwb_identifier"] == "source-recording-0001"
    assert back.attrs["source"]["source"] == str(src)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert io.read().subject.species == "Macaca mulatta"


def test_failed_write_leaves_nothing_behind(setup, tmp_path, monkeypatch):
    src, _, _, res, _ = setup
    before = _sha(src)

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_results(tmp_path / "results.nwb", res)
    with pytest.raises(RuntimeError, match="disk full"):
        write_results(src, res, append=True)
    assert not (tmp_path / "results.nwb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.nwb"]
    assert _sha(src) == before


def test_dims_of_length_one_round_trip_without_single_row_tables(tmp_path):
    """One head, one epoch, one stimulus: exact round trip, and no table with a single row
    (nwbinspector's check_single_row)."""
    nwbinspector = pytest.importorskip("nwbinspector")
    rng = np.random.default_rng(0)
    res = xr.Dataset(
        {
            "reconstruction": (("stimulus_id", "y", "x", "channel"),
                               rng.random((1, 4, 4, 3)).astype(np.float32)),
            "pixel_r": (("stimulus_id",), np.array([0.25])),
            "feature_irf": (("head", "irf_channel"), rng.random((1, 5))),
            "feature_irf_per_stimulus": (("stimulus_id", "head", "irf_channel"),
                                         rng.random((1, 1, 5))),
            "history_loss": (("epoch",), np.array([0.5])),
        },
        coords={"stimulus_id": [3], "stimulus_role": ("stimulus_id", ["held_out"]),
                "head": ["all"], "head_area": ("head", ["V4"]), "epoch": [1],
                "channel": ["R", "G", "B"]},
        attrs={"mean_pixel_r": 0.25, "n_train_stimuli": 0},
    )
    out = write_results(tmp_path / "r.nwb", res, source_metadata=False)
    back = read_results(out)
    xr.testing.assert_identical(back.drop_attrs(), res.drop_attrs())
    assert back.attrs["mean_pixel_r"] == 0.25
    names = {m.check_function_name for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(out))}
    assert "check_single_row" not in names
