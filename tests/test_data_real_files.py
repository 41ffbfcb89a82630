"""Robustness on real NWB files written by other people (../shared/data/real-nwb/)."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import REAL_NWB, sha256

from irfa_nwb.data import list_stimulus_tables, load_dataset, open_nwb, stack_presentations
from irfa_nwb.errors import NWBLayoutError

pytestmark = [
    pytest.mark.skipif(not REAL_NWB.is_dir(), reason=f"{REAL_NWB} not present"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

FILES = [
    "sub-anm369963_ses-20170228.nwb",
    "sub-anm372793_ses-20170508.nwb",
    "sub-4_ses-4_ecephys+image.nwb",
    "A8604-211122.nwb",
    "2.1.0_imageseries_non_external_format.nwb",
]


@pytest.fixture(scope="module")
def hashes():
    return {f: sha256(REAL_NWB / f) for f in FILES if (REAL_NWB / f).exists()}


def _path(name):
    path = REAL_NWB / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def _direct_counts(path, onsets, window):
    """Counts computed the slow, independent way: pynwb's per-unit accessor."""
    with open_nwb(path) as nwb:
        out = np.zeros((len(onsets), len(nwb.units)))
        for u in range(len(nwb.units)):
            st = np.asarray(nwb.units.get_unit_spike_times(u))
            for p, t in enumerate(onsets):
                out[p, u] = np.sum((st >= t + window[0]) & (st < t + window[1]))
    return out


@pytest.mark.parametrize(
    "name", ["sub-anm369963_ses-20170228.nwb", "sub-anm372793_ses-20170508.nwb"]
)
def test_alm_trials_units_electrodes(name):
    path = _path(name)
    with pytest.raises(NWBLayoutError, match=r"no usable stimulus presentations.*intervals/trials"):
        load_dataset(path)
    ds = load_dataset(
        path, presentations="trials", image_column="type", images=False, window=(0.0, 1.0)
    )
    assert ds.sizes["unit"] == 1
    assert ds["electrode_group"].values[0].startswith("H-1")  # probe name from group_name
    assert ds["area"].values[0].startswith("brain_region: ALM")
    pres = stack_presentations(ds)
    expected = _direct_counts(path, pres["start_time"].values, (0.0, 1.0))
    np.testing.assert_array_equal(pres.values, expected)
    assert ds["stimulus_id"].dtype.kind == "U"


def test_external_video_gives_clear_error():
    path = _path("sub-4_ses-4_ecephys+image.nwb")
    with pytest.raises(NWBLayoutError) as err:
        load_dataset(path)
    msg = str(err.value)
    assert "StimulusPresentation_encoding" in msg and "external file" in msg and ".mp4" in msg
    assert "encoding_table" in msg and "no image column" in msg
    with pytest.raises(NWBLayoutError, match="external"):
        load_dataset(path, presentations="StimulusPresentation_encoding")
    with pytest.raises(NWBLayoutError, match="not in the file; pass them with images="):
        load_dataset(path, presentations="encoding_table", image_column="Clip_name")


def test_movie_clip_table_units():
    path = _path("sub-4_ses-4_ecephys+image.nwb")
    ds = load_dataset(
        path,
        presentations="encoding_table",
        image_column="Clip_name",
        images=False,
        window=(0.0, 0.5),
    )
    pres = stack_presentations(ds)
    assert pres.sizes == {"presentation": 90, "unit": 35}
    assert set(ds["area"].values) <= {
        "hippocampus_right",
        "amygdala_right",
        "hippocampus_left",
        "amygdala_left",
    } | set(ds["area"].values)
    assert "hippocampus_right" in set(ds["area"].values)
    expected = _direct_counts(path, pres["start_time"].values, (0.0, 0.5))
    np.testing.assert_array_equal(pres.values, expected)
    table = list_stimulus_tables(path)
    assert not table["usable"].any()
    assert "external" in table.set_index("name").loc["StimulusPresentation_encoding", "note"]


def test_phy_export_units_with_own_group_columns():
    path = _path("A8604-211122.nwb")
    with pytest.raises(NWBLayoutError, match="epochs"):
        load_dataset(path)
    with pytest.raises(NWBLayoutError, match="tags"):
        load_dataset(path, presentations="epochs")
    with open_nwb(path) as nwb:
        from irfa_nwb.data.units import unit_metadata

        meta = unit_metadata(nwb)
    assert list(meta["unit_id"]) == [6, 191, 206]
    assert list(meta["electrode_group"]) == ["group0_psb"] * 3


def test_imageseries_in_acquisition_only():
    path = _path("2.1.0_imageseries_non_external_format.nwb")
    with pytest.raises(NWBLayoutError, match="no stimulus series and no interval tables"):
        load_dataset(path)


def test_sources_unchanged(hashes):
    for name, digest in hashes.items():
        with open_nwb(REAL_NWB / name):
            pass
        assert sha256(REAL_NWB / name) == digest
