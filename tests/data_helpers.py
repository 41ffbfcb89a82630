"""Builders of tiny NWB files with known ground truth, for the tests of irfa_nwb.data."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

REAL_NWB = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-nwb"
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def new_nwbfile(identifier: str = "test-file") -> Any:
    from pynwb import NWBFile
    from pynwb.file import Subject

    return NWBFile(
        session_description="tiny test file",
        identifier=identifier,
        session_start_time=START,
        session_id="ses-1",
        subject=Subject(subject_id="m1", species="Macaca mulatta", sex="M", age="P5Y"),
    )


def add_electrodes(nwb: Any, groups: dict[str, tuple[str, int]], rf: bool = True) -> None:
    """``groups``: group name -> (area, number of electrodes)."""
    dev = nwb.create_device(name="utah", description="Utah arrays")
    if rf:
        nwb.add_electrode_column(name="rf_x", description="RF centre x (deg)")
        nwb.add_electrode_column(name="rf_y", description="RF centre y (deg)")
    k = 0
    for name, (area, n) in groups.items():
        group = nwb.create_electrode_group(
            name=name, description="array", location=area, device=dev
        )
        for _ in range(n):
            extra = {"rf_x": float(k), "rf_y": -float(k) / 2} if rf else {}
            nwb.add_electrode(group=group, location=area, **extra)
            k += 1


def add_images(nwb: Any, pixels: np.ndarray, name: str = "images") -> Any:
    from pynwb.base import ImageReferences, Images
    from pynwb.image import GrayscaleImage, RGBImage

    imgs = []
    for i, p in enumerate(pixels):
        cls = RGBImage if p.ndim == 3 else GrayscaleImage
        imgs.append(cls(name=f"img{i:03d}", data=p, description="stimulus"))
    container = Images(
        name=name,
        images=imgs,
        description="stimulus images",
        order_of_images=ImageReferences(name="order_of_images", data=imgs),
    )
    nwb.add_stimulus_template(container)
    return container


def write(nwb: Any, path: Path) -> Path:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def generic_file(
    path: Path,
    *,
    n_images: int = 3,
    n_repeats: int = 4,
    seed: int = 0,
    mua: bool = True,
    spikes: bool = True,
) -> dict[str, Any]:
    """Generic best-practice layout with known spike counts and MUA window means.

    Presentations are 1 s apart (onset 1, 2, ...). Units 0, 1 are on ``arrayA`` (V1), units 2, 3
    on ``arrayB`` (V4). Per presentation p and unit u: ``bin0[p, u]`` spikes in [0.01, 0.09),
    ``bin1[p, u]`` in [0.11, 0.19) after onset, ``late[p, u]`` in [0.31, 0.59). The MUA series
    (1 kHz) equals ``mua[p, c]`` on [onset, onset + 0.2) and ``mua_late[p, c]`` on
    [onset + 0.3, onset + 0.6), 0 elsewhere.
    """
    from pynwb.ecephys import ElectricalSeries
    from pynwb.image import IndexSeries

    rng = np.random.default_rng(seed)
    nwb = new_nwbfile("generic-" + str(seed))
    add_electrodes(nwb, {"arrayA": ("V1", 2), "arrayB": ("V4", 2)})
    pixels = rng.integers(0, 256, size=(n_images, 8, 6, 3), dtype=np.uint8)
    images = add_images(nwb, pixels)
    order = np.tile(np.arange(n_images), n_repeats)
    rng.shuffle(order)
    onsets = 1.0 + np.arange(len(order), dtype=np.float64)
    nwb.add_stimulus(
        IndexSeries(
            name="presentations",
            data=order.astype(np.uint32),
            indexed_images=images,
            unit="N/A",
            timestamps=onsets,
            description="image shown",
        )
    )
    n_units = 4
    bin0 = rng.integers(0, 4, size=(len(order), n_units))
    bin1 = rng.integers(0, 4, size=(len(order), n_units))
    late = rng.integers(0, 4, size=(len(order), n_units))
    if spikes:
        for u in range(n_units):
            times = []
            for p, t in enumerate(onsets):
                times += list(t + rng.uniform(0.01, 0.09, bin0[p, u]))
                times += list(t + rng.uniform(0.11, 0.19, bin1[p, u]))
                times += list(t + rng.uniform(0.31, 0.59, late[p, u]))
            nwb.add_unit(spike_times=np.sort(times), electrodes=[u])
    mua_vals = rng.normal(size=(len(order), n_units)).astype(np.float32)
    mua_late = rng.normal(size=(len(order), n_units)).astype(np.float32)
    if mua:
        rate = 1000.0
        data = np.zeros((int((onsets[-1] + 1.0) * rate), n_units), dtype=np.float32)
        for p, t in enumerate(onsets):
            i0 = int(round(t * rate))
            data[i0 : i0 + 200] = mua_vals[p]
            data[i0 + 300 : i0 + 600] = mua_late[p]
        region = nwb.create_electrode_table_region(list(range(n_units)), "all electrodes")
        module = nwb.create_processing_module("ecephys", "processed extracellular data")
        module.add(
            ElectricalSeries(
                name="MUA",
                data=data,
                electrodes=region,
                rate=rate,
                starting_time=0.0,
                description="MUA envelope",
            )
        )
    write(nwb, path)
    return {
        "path": path,
        "pixels": pixels,
        "order": order,
        "onsets": onsets,
        "bin0": bin0,
        "bin1": bin1,
        "late": late,
        "mua": mua_vals,
        "mua_late": mua_late,
    }


def allen_coding_file(path: Path, *, seed: int = 0) -> dict[str, Any]:
    """DANDI:000021-like: units.peak_channel_id -> electrodes (custom ids), quality columns,
    ``natural_scenes_presentations`` (``frame`` float, -1 = blank), a movie table, no images."""
    from pynwb.epoch import TimeIntervals

    rng = np.random.default_rng(seed)
    nwb = new_nwbfile("allen-coding")
    dev = nwb.create_device(name="neuropixels", description="probe")
    chan_ids = [850100, 850101, 850200, 850201]
    areas = ["VISp", "VISp", "VISl", "VISl"]
    groups = {}
    for name in ("probeA", "probeB"):
        groups[name] = nwb.create_electrode_group(
            name=name, description="probe", location="", device=dev
        )
    for cid, area, g in zip(chan_ids, areas, ["probeA", "probeA", "probeB", "probeB"], strict=True):
        nwb.add_electrode(id=cid, group=groups[g], location=area)
    quality = ["good", "good", "noise", "good", "good"]
    amp = [0.05, 0.2, 0.01, 0.01, 0.0]
    presence = [0.99, 0.99, 0.99, 0.99, 0.5]
    isi = [0.1, 0.1, 0.1, 0.1, 0.1]
    peak = [850101, 850100, 850200, 850201, 850201]
    for col, desc in (
        ("peak_channel_id", "peak channel"),
        ("quality", "q"),
        ("amplitude_cutoff", "a"),
        ("presence_ratio", "p"),
        ("isi_violations", "i"),
    ):
        nwb.add_unit_column(name=col, description=desc)
    frames = np.array([0, 1, -1, 2, 1, 0, -1, 2, 0, 1], dtype=np.float64)
    onsets = 10.0 + 0.25 * np.arange(len(frames))
    counts = rng.integers(0, 5, size=(len(frames), len(quality)))
    for u in range(len(quality)):
        times = np.sort(
            np.concatenate(
                [t + rng.uniform(0.02, 0.18, counts[p, u]) for p, t in enumerate(onsets)]
            )
        )
        nwb.add_unit(
            spike_times=times,
            peak_channel_id=peak[u],
            quality=quality[u],
            amplitude_cutoff=amp[u],
            presence_ratio=presence[u],
            isi_violations=isi[u],
            id=100 + u,
        )
    scenes = TimeIntervals(name="natural_scenes_presentations", description="natural scenes")
    scenes.add_column(name="frame", description="image index, -1 blank")
    scenes.add_column(name="stimulus_name", description="name")
    for t, f in zip(onsets, frames, strict=True):
        scenes.add_interval(
            start_time=t, stop_time=t + 0.25, frame=f, stimulus_name="natural_scenes"
        )
    nwb.add_time_intervals(scenes)
    movie = TimeIntervals(name="natural_movie_one_presentations", description="movie")
    movie.add_column(name="frame", description="movie frame")
    movie_onsets = 20.0 + np.arange(8) / 30.0
    for i, t in enumerate(movie_onsets):
        movie.add_interval(start_time=t, stop_time=t + 1 / 30, frame=float(i % 4))
    nwb.add_time_intervals(movie)
    gratings = TimeIntervals(name="static_gratings_presentations", description="gratings")
    gratings.add_column(name="orientation", description="deg")
    gratings.add_interval(start_time=30.0, stop_time=30.25, orientation=45.0)
    nwb.add_time_intervals(gratings)
    write(nwb, path)
    return {
        "path": path,
        "frames": frames,
        "onsets": onsets,
        "counts": counts,
        "areas_of_units": ["VISp", "VISp", "VISl", "VISl", "VISl"],
        "groups_of_units": ["probeA", "probeA", "probeB", "probeB", "probeB"],
        "movie_onsets": movie_onsets,
    }


def allen_behavior_file(path: Path, *, seed: int = 0) -> dict[str, Any]:
    """DANDI:000713-like: template ImageSeries with image names in ``control_description``,
    ``<set>_presentations`` with ``image_index`` / ``image_name`` / ``omitted``."""
    from pynwb.epoch import TimeIntervals
    from pynwb.image import ImageSeries

    rng = np.random.default_rng(seed)
    nwb = new_nwbfile("allen-behavior")
    add_electrodes(nwb, {"probeC": ("VISam", 2)}, rf=False)
    names = ["im061", "im062", "im063"]
    pixels = rng.integers(0, 256, size=(3, 5, 7), dtype=np.uint8)
    nwb.add_stimulus_template(
        ImageSeries(
            name="Natural_Images_set_G",
            data=pixels,
            unit="NA",
            format="raw",
            timestamps=[0.0, 1.0, 2.0],
            control_description=names,
            description="templates",
        )
    )
    table = TimeIntervals(name="Natural_Images_set_G_presentations", description="flashes")
    table.add_column(name="image_index", description="index into template")
    table.add_column(name="image_name", description="name")
    table.add_column(name="omitted", description="omitted flash")
    idx = [0, 1, 2, 3, 1, 0]
    onsets = 5.0 + 0.75 * np.arange(len(idx))
    for t, i in zip(onsets, idx, strict=True):
        table.add_interval(
            start_time=t,
            stop_time=t + 0.25,
            image_index=i,
            image_name=names[i] if i < 3 else "omitted",
            omitted=i == 3,
        )
    nwb.add_time_intervals(table)
    for u in range(2):
        nwb.add_unit(spike_times=onsets + 0.05 + 0.01 * u, electrodes=[u])
    write(nwb, path)
    keep = np.array(idx) != 3
    return {
        "path": path,
        "pixels": pixels,
        "names": names,
        "index": np.array(idx)[keep],
        "onsets": onsets[keep],
    }


def _matlab_cellstr(f: Any, group: Any, name: str, strings: list[str]) -> None:
    """Write a MATLAB v7.3 cell array of char arrays (references into '#refs#')."""
    import h5py

    refs_group = f.require_group("#refs#")
    refs = []
    for s in strings:
        key = f"s{len(refs_group)}"
        codes = np.array([ord(c) for c in s], dtype=np.uint16).reshape(-1, 1)
        d = refs_group.create_dataset(key, data=codes)
        d.attrs["MATLAB_class"] = np.bytes_("char")
        refs.append(d.ref)
    ds = group.create_dataset(
        name, data=np.array(refs, dtype=h5py.ref_dtype).reshape(-1, 1), dtype=h5py.ref_dtype
    )
    ds.attrs["MATLAB_class"] = np.bytes_("cell")


def tvsd_files(
    folder: Path,
    *,
    n_train: int = 6,
    n_test: int = 2,
    n_reps: int = 3,
    n_arrays: int = 3,
    channels: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Tiny files with TVSD's published layout (h5py shapes as documented) and PNG images."""
    import h5py
    import imageio.v3 as iio

    rng = np.random.default_rng(seed)
    n_elec = n_arrays * channels
    train = rng.normal(size=(n_train, n_elec)).astype(np.float32)
    reps = rng.normal(size=(n_reps, n_test, n_elec)).astype(np.float32)
    reps[-1, 0] = np.nan  # one missing repeat
    mua = folder / "THINGS_normMUA.mat"
    with h5py.File(mua, "w", userblock_size=512) as f:
        for name, data in (
            ("train_MUA", train),
            ("test_MUA", np.nanmean(reps, axis=0)),
            ("test_MUA_reps", reps),
            ("reliab", rng.uniform(0, 1, size=(3, n_elec))),
            ("SNR", rng.uniform(0, 5, size=(2, n_elec))),
            ("SNR_max", rng.uniform(0, 5, (n_elec, 1))),
            ("oracle", rng.uniform(0, 1, size=(n_elec, 1))),
            ("lats", rng.uniform(30, 80, size=(2, n_elec))),
            ("tb", np.arange(-100, 200.0)[:, None]),
        ):
            d = f.create_dataset(name, data=data)
            d.attrs["MATLAB_class"] = np.bytes_("double")
    logs = folder / "_logs"
    logs.mkdir()
    root = folder / "things"
    train_paths = [f"cat{i % 2}/cat{i % 2}_{i:02d}b.png" for i in range(n_train)]
    test_paths = [f"dog/dog_{i:02d}s.png" for i in range(n_test)]
    pixels = rng.integers(0, 256, size=(n_train + n_test, 10, 10, 3), dtype=np.uint8)
    for p, px in zip(train_paths + test_paths, pixels, strict=True):
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(root / p, px)
    imgs = logs / "things_imgs.mat"
    with h5py.File(imgs, "w", userblock_size=512) as f:
        for name, paths in (("train_imgs", train_paths), ("test_imgs", test_paths)):
            g = f.create_group(name)
            g.attrs["MATLAB_class"] = np.bytes_("struct")
            _matlab_cellstr(f, g, "things_path", paths)
            _matlab_cellstr(f, g, "class", [p.split("/")[0] for p in paths])
    return {
        "mua": mua,
        "images_file": imgs,
        "root": root,
        "train": train,
        "reps": reps,
        "pixels": pixels,
        "train_paths": train_paths,
        "test_paths": test_paths,
        "n_elec": n_elec,
    }


def tvsd_trials_files(
    folder: Path,
    mua: np.ndarray,
    allmat: np.ndarray,
    tb: np.ndarray,
    *,
    mapping: np.ndarray | None = None,
    dtype: Any = np.float64,
    compression: str | None = "gzip",
) -> dict[str, Any]:
    """A ``THINGS_MUA_trials.mat`` with TVSD's layout as h5py sees a MATLAB v7.3 file.

    ``mua`` is MATLAB's ``ALLMUA`` in **array (physical) order**, ``[electrode x trial x time]``;
    it is written in recording order: physical electrode ``p`` goes to recorded column
    ``mapping[p] - 1`` (``mapping`` 1-based, as in the authors' ``1024chns_mapping_*.mat``,
    written to ``_logs/`` as a MATLAB v5 file). ``allmat`` is MATLAB's ``ALLMAT``
    ``[trial x columns]``, ``tb`` the time base (ms). MATLAB arrays are stored transposed.
    """
    import h5py
    from scipy.io import savemat

    mua = np.asarray(mua)
    n_elec = mua.shape[0]
    recorded = mua.copy()
    if mapping is not None:
        mapping = np.asarray(mapping, dtype=np.int64)
        recorded[mapping - 1] = mua
        logs = folder / "_logs"
        logs.mkdir(exist_ok=True)
        savemat(logs / "1024chns_mapping_20220105.mat", {"mapping": mapping[None, :].astype(float)})
    path = folder / "THINGS_MUA_trials.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, data in (
            ("ALLMUA", recorded.astype(dtype).T),  # (time, trial, electrode)
            ("ALLMAT", np.asarray(allmat, dtype=np.float64).T),  # (columns, trial)
            ("tb", np.asarray(tb, dtype=np.float64)[:, None]),  # MATLAB 1 x n_time
        ):
            kwargs = {"chunks": True, "compression": compression} if data.ndim == 3 else {}
            d = f.create_dataset(name, data=data, **kwargs)
            d.attrs["MATLAB_class"] = np.bytes_("double" if data.dtype == np.float64 else "single")
    return {"path": path, "n_elec": n_elec, "mapping": mapping}
