"""Tests of irfa_nwb.results: NWB round trip, nwbinspector, source safety, append rules."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pynwb = pytest.importorskip("pynwb")

from irfa_nwb.errors import InputError, NWBLayoutError  # noqa: E402
from irfa_nwb.results import read_results, write_results  # noqa: E402

SIZE = 8
HEADS = ["arrayA", "arrayB", "arrayC"]
AREAS = {"arrayA": "V1", "arrayB": "V1", "arrayC": "IT"}
N_STIM = 6
N_CH = 4


class FakeIRFA:
    """Follows the fitted IRFA contract with cheap deterministic maths."""

    def __init__(self, n_units: int):
        rng = np.random.default_rng(1)
        self.heads_ = list(HEADS)
        self.image_size_ = SIZE
        self.device_ = "cpu"
        self.w_img = rng.standard_normal((n_units, SIZE * SIZE * 3)) * 0.3
        self.w_sp = rng.standard_normal((n_units, len(HEADS) * SIZE * SIZE)) * 0.3
        self.w_ft = rng.standard_normal((n_units, len(HEADS) * N_CH))
        self.history_ = [
            {"epoch": e, "loss_generator": 1.0 / (e + 1), "loss_pixel": 0.5 / (e + 1),
             "val_loss": float("nan"), "time": 0.1 * e, "note": "text is skipped"}
            for e in range(3)
        ]

    def get_params(self):
        return {"n_channels": 32, "lr_generator": 7.8e-4, "betas": (0.5, 0.999),
                "perceptual_weight": 0.69, "device": None, "verbose": False,
                "name": "irfa", "callback": print}

    def _x(self, X):
        return np.asarray(X, dtype=np.float64)

    def predict(self, X):
        x = self._x(X)
        img = 1 / (1 + np.exp(-(x @ self.w_img)))
        return img.reshape(len(x), SIZE, SIZE, 3).astype(np.float32)

    def spatial_fields(self, X):
        x = self._x(X)
        s = (x @ self.w_sp).reshape(len(x), len(HEADS), SIZE, SIZE)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def feature_fields(self, X):
        x = self._x(X)
        return np.abs(x @ self.w_ft).reshape(len(x), len(HEADS), N_CH).astype(np.float32)


def make_source_nwb(path: Path) -> pynwb.NWBFile:
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
    device = nwb.create_device(name="utah", description="Utah arrays")
    for head in HEADS:
        nwb.create_electrode_group(name=head, description=f"array {head}", device=device,
                                   location=AREAS[head])
    for head in HEADS:
        for _ in range(2):
            nwb.add_electrode(group=nwb.electrode_groups[head], location=AREAS[head])
    rng = np.random.default_rng(0)
    for i in range(6):
        nwb.add_unit(spike_times=np.sort(rng.random(5) * 10), electrodes=[i])
    imgs = [RGBImage(name=f"img{i}", data=rng.random((12, 12, 3)), description=f"image {i}")
            for i in range(N_STIM)]
    nwb.add_stimulus_template(
        Images(name="images", images=imgs, description="natural images",
               order_of_images=ImageReferences(name="order_of_images", data=imgs))
    )
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return nwb


def make_dataset(path: Path, nwb: pynwb.NWBFile) -> xr.Dataset:
    rng = np.random.default_rng(0)
    n_units = 6
    groups = [h for h in HEADS for _ in range(2)]
    stim_ids = np.array([10, 11, 12, 13, 14, 15])
    presentation_stim = np.repeat(stim_ids, 2)[::-1]  # two repeats, scrambled order
    responses = xr.DataArray(
        rng.standard_normal((len(presentation_stim), n_units)).astype(np.float32),
        dims=("presentation", "unit"),
        coords={
            "stimulus_id": ("presentation", presentation_stim),
            "start_time": ("presentation", np.arange(len(presentation_stim)) * 0.5),
            "unit_id": ("unit", np.arange(n_units)),
            "electrode_group": ("unit", groups),
            "area": ("unit", [AREAS[g] for g in groups]),
        },
    )
    images = xr.DataArray(
        (rng.random((N_STIM, 12, 12, 3)) * 255).astype(np.uint8),
        dims=("stimulus", "y", "x", "channel"),
        coords={"stimulus": ("stimulus", stim_ids)},  # the load_dataset layout
    )
    return xr.Dataset(
        {"responses": responses, "images": images},
        attrs={"source": str(path), "identifier": nwb.identifier,
               "units_object_id": nwb.units.object_id,
               "presentations_object_id": nwb.stimulus_template["images"].object_id,
               "window": [0.0, 0.2]},
    )


@pytest.fixture
def setup(tmp_path):
    src = tmp_path / "source.nwb"
    nwb = make_source_nwb(src)
    ds = make_dataset(src, nwb)
    return src, ds, FakeIRFA(n_units=6)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected_X(ds: xr.Dataset) -> np.ndarray:
    resp = ds["responses"]
    ids = ds["images"]["stimulus"].values
    return np.stack([resp.values[resp["stimulus_id"].values == s].mean(axis=0) for s in ids])


def test_round_trip(setup, tmp_path):
    src, ds, est = setup
    before = _sha(src)
    out = write_results(tmp_path / "results.nwb", est, ds)
    assert out == tmp_path / "results.nwb" and out.is_file()
    assert _sha(src) == before  # source untouched, byte for byte
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left

    res = read_results(out)
    X = _expected_X(ds)
    np.testing.assert_array_equal(res["stimulus_id"].values, [10, 11, 12, 13, 14, 15])
    np.testing.assert_array_equal(res["reconstruction"].values, est.predict(X))
    assert res["reconstruction"].dims == ("stimulus", "y", "x", "channel")
    assert "spatial_irf_per_stimulus" not in res  # off by default
    sp = est.spatial_fields(X)
    np.testing.assert_allclose(res["spatial_irf"].values, sp.astype(np.float64).mean(axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(res["spatial_irf"].sum("head").values, 1.0, rtol=1e-5)
    ft = est.feature_fields(X).astype(np.float64)
    np.testing.assert_array_equal(res["feature_irf_per_stimulus"].values, ft)
    np.testing.assert_allclose(res["feature_irf"].values, ft.mean(axis=0))
    assert list(res["head"].values) == HEADS
    assert list(res["area"].values) == ["V1", "V1", "IT"]
    assert res["n_units"].values.tolist() == [2, 2, 2]
    # stored targets: uint8 images -> [0, 1], resized to 8 px
    assert res["stimulus_image"].shape == (N_STIM, SIZE, SIZE, 3)
    assert 0.0 <= float(res["stimulus_image"].min()) <= float(res["stimulus_image"].max()) <= 1
    # metrics recomputed from what is stored
    from irfa_nwb.analysis import metrics

    np.testing.assert_allclose(
        res["pixel_r"].values,
        metrics.pixel_correlation(res["stimulus_image"].values, res["reconstruction"].values),
    )
    assert res["identification_rank"].dtype.kind == "i"
    assert set(res["identification_rank"].values) <= set(range(1, N_STIM + 1))
    # configuration typed, history numeric, all-NaN and text columns skipped
    cfg = res.attrs["model_config"]
    assert cfg["n_channels"] == 32 and cfg["lr_generator"] == 7.8e-4
    assert cfg["betas"] == [0.5, 0.999] and cfg["device"] is None and cfg["verbose"] is False
    assert cfg["name"] == "irfa" and cfg["callback"] == "print"
    np.testing.assert_array_equal(res["epoch"].values, [0, 1, 2])
    np.testing.assert_allclose(res["history_loss_generator"].values, [1.0, 0.5, 1 / 3])
    np.testing.assert_allclose(res["history_time"].values, [0.0, 0.1, 0.2])
    assert np.isnan(res["history_val_loss"].values).all()  # NaN kept
    assert "history_note" not in res  # text is not part of the numeric history
    # provenance
    srcrec = res.attrs["source"]
    assert srcrec["source"] == str(src)
    assert srcrec["identifier"] == "source-recording-0001"
    with pynwb.NWBHDF5IO(str(src), "r") as io:
        nwb = io.read()
        assert srcrec["units_object_id"] == nwb.units.object_id
        assert srcrec["presentations_object_id"] == nwb.stimulus_template["images"].object_id
    assert srcrec["fit_device"] == "cpu"
    assert srcrec["window"] == "0.0, 0.2"

    # the results file carries the session metadata of the source
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "monkey1"
        assert nwb.session_start_time == datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
        assert nwb.identifier != "source-recording-0001"
        imgs = nwb.analysis["irfa_spatial_irfs"]
        assert "area IT" in imgs.images["arrayC"].description


def test_nwbinspector_clean(setup, tmp_path):
    nwbinspector = pytest.importorskip("nwbinspector")
    src, ds, est = setup
    out = write_results(tmp_path / "results.nwb", est, ds)
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out)))
    assert messages == [], [(m.check_function_name, m.message, m.location) for m in messages]
    dandi = nwbinspector.load_config("dandi")
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out), config=dandi))
    assert messages == [], [(m.check_function_name, m.message, m.location) for m in messages]
    # the inspector does flag problems in this setup: a source without a subject
    bare = tmp_path / "bare.nwb"
    with pynwb.NWBHDF5IO(str(bare), "w") as io:
        io.write(pynwb.NWBFile(session_description="bare file", identifier="bare",
                               session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc)))
    names = {m.check_function_name for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(bare))}
    assert "check_subject_exists" in names


def test_explicit_X_and_string_ids(setup, tmp_path):
    _, ds, est = setup
    # images with a stimulus_id coordinate (images_of layout) and string ids
    images = ds["images"]
    images = images.drop_vars("stimulus").assign_coords(
        stimulus_id=("stimulus", images["stimulus"].values.astype(str))
    )
    ds = xr.Dataset({"images": images}, attrs=ds.attrs)
    X = xr.DataArray(
        np.random.default_rng(2).standard_normal((2, 6)),
        dims=("stimulus", "unit"),
        coords={"stimulus_id": ("stimulus", ["12", "10"])},
    )
    out = write_results(tmp_path / "r.nwb", est, ds, X=X, metrics=False,
                        spatial_per_stimulus=True)
    res = read_results(out)
    np.testing.assert_array_equal(res["spatial_irf_per_stimulus"].values,
                                  est.spatial_fields(X.values))
    assert res["spatial_irf_per_stimulus"].dims == ("stimulus", "head", "y", "x")
    assert res["stimulus_id"].values.tolist() == ["12", "10"]
    assert "pixel_r" not in res
    with pytest.raises(InputError, match="stimulus_id"):
        write_results(tmp_path / "r3.nwb", est, ds, X=X.values)
    # neither X nor the dataset carry unit coordinates: areas unknown
    assert list(res["area"].values) == ["unknown"] * 3
    assert res["n_units"].values.tolist() == [-1] * 3


def test_refuses_overwrite_and_source_path(setup, tmp_path):
    src, ds, est = setup
    out = write_results(tmp_path / "results.nwb", est, ds)
    with pytest.raises(InputError, match="overwrite=True"):
        write_results(out, est, ds)
    write_results(out, est, ds, overwrite=True)
    before = _sha(src)
    with pytest.raises(InputError, match="source recording"):
        write_results(src, est, ds, overwrite=True)
    assert _sha(src) == before


def test_append_safe_local_file(setup):
    src, ds, est = setup
    write_results(src, est, ds, append=True)
    res = read_results(src)
    assert res["reconstruction"].shape == (N_STIM, SIZE, SIZE, 3)
    with pynwb.NWBHDF5IO(str(src), "r") as io:
        nwb = io.read()
        assert nwb.identifier == "source-recording-0001"
        assert len(nwb.units) == 6  # original content kept
    with pytest.raises(InputError, match="already holds results"):
        write_results(src, est, ds, append=True)


def test_append_refused_when_unsafe(setup, tmp_path):
    import h5py

    src, ds, est = setup
    # older schema version: appending would upgrade the file silently
    with h5py.File(src, "a") as f:
        f.attrs["nwb_version"] = "2.5.0"
    before = _sha(src)
    with pytest.raises(InputError, match="schema 2.5.0"):
        write_results(src, est, ds, append=True)
    assert _sha(src) == before
    # remote source
    remote = ds.copy()
    remote.attrs["source"] = "https://dandiarchive.org/dandiset/000021/0.1/files?location=x"
    with pytest.raises(InputError, match="not a local file"):
        write_results(src, est, remote, append=True)
    # another local file than the source
    other = tmp_path / "other.nwb"
    other.write_bytes(src.read_bytes())
    with pytest.raises(InputError, match="comes from"):
        write_results(other, est, ds, append=True)
    with pytest.raises(InputError, match="not a local file"):
        write_results(tmp_path / "missing.nwb", est, ds, append=True)


def test_read_errors(tmp_path, setup):
    src, _, _ = setup
    with pytest.raises(NWBLayoutError, match="no IRFA results"):
        read_results(src)
    with pytest.raises(InputError, match="does not exist"):
        read_results(tmp_path / "nope.nwb")


def test_unfitted_estimator_refused(setup, tmp_path):
    _, ds, _ = setup
    with pytest.raises(InputError, match="fitted"):
        write_results(tmp_path / "r.nwb", object(), ds)



def test_remote_source_metadata_failure_warns(setup, tmp_path, monkeypatch):
    import contextlib

    import irfa_nwb.data

    _, ds, est = setup
    remote = ds.copy()
    remote.attrs["source"] = "dandi://000001@0.1/sub-x/sub-x.nwb"

    @contextlib.contextmanager
    def offline(*args, **kwargs):
        raise OSError("network unreachable")
        yield  # pragma: no cover

    monkeypatch.setattr(irfa_nwb.data, "open_nwb", offline)
    with pytest.warns(UserWarning, match="network unreachable"):
        out = write_results(tmp_path / "r.nwb", est, remote)
    res = read_results(out)
    assert res.attrs["source"]["source"] == "dandi://000001@0.1/sub-x/sub-x.nwb"
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert io.read().subject is None
    # opting out: no warning, no network
    out = write_results(tmp_path / "r2.nwb", est, remote, source_metadata=False)
    assert out.is_file()


def test_open_nwbfile_as_source(setup, tmp_path):
    src, ds, est = setup
    with pynwb.NWBHDF5IO(str(src), "r") as io:
        nwb = io.read()
        bare = ds.copy()
        bare.attrs = {}  # no provenance in the dataset: all of it comes from the NWBFile
        out = write_results(tmp_path / "r.nwb", est, bare, source=nwb)
    res = read_results(out)
    assert res.attrs["source"]["identifier"] == "source-recording-0001"
    assert res.attrs["source"]["source"] == str(src)
    assert len(res.attrs["source"]["units_object_id"]) == 36
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert io.read().subject.species == "Macaca mulatta"


def test_failed_write_leaves_nothing_behind(setup, tmp_path, monkeypatch):
    src, ds, est = setup
    before = _sha(src)

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_results(tmp_path / "results.nwb", est, ds)
    with pytest.raises(RuntimeError, match="disk full"):
        write_results(src, est, ds, append=True)
    assert not (tmp_path / "results.nwb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.nwb"]
    assert _sha(src) == before
