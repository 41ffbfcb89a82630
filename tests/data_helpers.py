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
        group = nwb.create_electrode_group(name=name, description="array", location=area, device=dev)
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


def generic_file(path: Path, *, n_images: int = 3, n_repeats: int = 4, seed: int = 0,
                 mua: bool = True, spikes: bool = True) -> dict[str, Any]:
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
        IndexSeries(name="presentations", data=order.astype(np.uint32), indexed_images=images,
                    unit="N/A", timestamps=onsets, description="image shown")
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
        module.add(ElectricalSeries(name="MUA", data=data, electrodes=region, rate=rate,
                                    starting_time=0.0, description="MUA envelope"))
    write(nwb, path)
    return {"path": path, "pixels": pixels, "order": order, "onsets": onsets, "bin0": bin0,
            "bin1": bin1, "late": late, "mua": mua_vals, "mua_late": mua_late}
