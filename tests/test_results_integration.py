"""End to end with the real parts: simulated NWB -> load_dataset -> IRFA -> results -> report."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("pynwb")
pytest.importorskip("torch")


def test_simulated_recording_to_results_and_report(tmp_path, monkeypatch):
    nwbinspector = pytest.importorskip("nwbinspector")
    import irfa_nwb
    from irfa_nwb.analysis.figures import write_report
    from irfa_nwb.data import load_dataset, to_training_pair, train_test_split
    from irfa_nwb.simulation import simulate_nwb

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    src = simulate_nwb(tmp_path / "sim.nwb", n_stimuli=24, n_test=6, n_repeats=2, image_size=16,
                       arrays={"V1": 2, "IT": 1}, units_per_array=4, seed=0)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    ds = load_dataset(src)
    train, _ = train_test_split(ds)
    X, y = to_training_pair(train)
    est = irfa_nwb.IRFA(image_size=16, epochs=1, perceptual_weight=0, channels=4, width=8,
                        verbose=0, random_state=0, device="cpu")
    est.fit(X, y)

    out = irfa_nwb.write_results(tmp_path / "results.nwb", est, ds)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out)))
    assert messages == [], [(m.check_function_name, m.message) for m in messages]
    dandi = nwbinspector.load_config("dandi")  # the stricter DANDI upload configuration
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out), config=dandi))
    assert messages == [], [(m.check_function_name, m.message) for m in messages]

    res = irfa_nwb.read_results(out)
    test_ids = np.unique(ds["stimulus_id"].values[ds["split"].values == "test"])
    assert res["stimulus_id"].values.tolist() == test_ids.tolist()  # test split by default
    assert res.attrs["source"]["stimulus_selection"] == "test split"
    assert res.attrs["source"]["identifier"] == ds.attrs["nwb_identifier"]
    assert list(res["head"].values) == [str(h) for h in est.heads_]
    assert set(res["area"].values) == {"V1", "IT"}
    Xt = irfa_nwb.average_repeats(ds).sel(stimulus=np.isin(
        irfa_nwb.average_repeats(ds)["stimulus_id"].values, test_ids))
    np.testing.assert_allclose(res["reconstruction"].values, np.asarray(est.predict(Xt)),
                               atol=1e-6)
    np.testing.assert_allclose(res["spatial_irf"].sum("head").values, 1.0, atol=1e-4)
    assert res.attrs["model_config"]["channels"] == 4
    assert res["history_loss_generator"].size == 1

    with pytest.warns(UserWarning, match="AlexNet"):
        files = write_report(out, tmp_path / "report", dpi=40)
    assert {p.name for p in files} >= {"reconstructions.png", "spatial_irfs.png",
                                       "feature_irfs.png", "training_curves.png", "summary.txt"}
