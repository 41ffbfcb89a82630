"""End to end with the real parts: simulated NWB -> load_dataset -> IRFA -> evaluate ->
results NWB -> report."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("pynwb")
pytest.importorskip("torch")


def test_simulated_recording_to_results_and_report(tmp_path, monkeypatch):
    nwbinspector = pytest.importorskip("nwbinspector")
    import irfa_nwb
    from irfa_nwb.workflows.report import write_report

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    src = irfa_nwb.write_simulated_recording(
        tmp_path / "sim.nwb", n_stimuli=24, n_test=6, n_repeats=2, image_size=16,
        arrays={"V1": 2, "IT": 1}, units_per_array=4,
    )
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    ds = irfa_nwb.load_dataset(src)
    train, test = irfa_nwb.split_stimuli(ds)
    est = irfa_nwb.IRFA(image_size=16, max_iter=1, perceptual_weight=0, channels=4, width=8,
                        random_state=0, device="cpu")
    est.fit(train["responses"], train["images"])  # every presentation, paired by stimulus_id

    res = irfa_nwb.evaluate(est, test)
    out = irfa_nwb.write_results(tmp_path / "results.nwb", res)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out)))
    assert messages == [], [(m.check_function_name, m.message) for m in messages]
    dandi = nwbinspector.load_config("dandi")  # the stricter DANDI upload configuration
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out), config=dandi))
    assert messages == [], [(m.check_function_name, m.message) for m in messages]

    back = irfa_nwb.read_results(out)
    xr.testing.assert_identical(back.drop_attrs(), res.drop_attrs())
    test_ids = ds["stimulus_id"].values[ds["split"].values == "test"]
    assert back["stimulus_id"].values.tolist() == test_ids.tolist()
    assert set(back["stimulus_role"].values) == {"held_out"}
    assert back.attrs["source"]["nwb_identifier"] == ds.attrs["nwb_identifier"]
    assert back.attrs["source"]["source_sha256"] == digest
    assert list(back["head"].values) == [str(h) for h in est.heads_]
    assert set(back["head_area"].values) == {"V1", "IT"}
    expected = est.predict(irfa_nwb.average_repeats(test)["responses"])
    np.testing.assert_allclose(back["reconstruction"].values, expected.values, atol=1e-6)
    np.testing.assert_allclose(back["spatial_irf"].sum("head").values, 1.0, atol=1e-4)
    assert back.attrs["model_params"]["channels"] == 4
    assert back.attrs["model"]["recipe.discriminator_every"] == 100
    assert back["history_loss_generator"].size == 1

    with pytest.warns(UserWarning, match="AlexNet"):
        files = write_report(out, tmp_path / "report", dpi=40)
    assert {p.name for p in files} >= {"reconstructions.png", "spatial_irfs.png",
                                       "feature_irfs.png", "training_curves.png", "summary.txt"}
