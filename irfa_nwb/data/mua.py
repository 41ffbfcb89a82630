"""MUA envelope from raw extracellular voltage, with spikeinterface (optional ``ephys`` extra).

Band-pass 500-9000 Hz, rectify, low-pass 200 Hz, resample to 1 kHz: the usual multi-unit
activity envelope (as used for TVSD). The raw data are read lazily in chunks (an NWB dataset is
never loaded whole); only the 1 kHz envelope is held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["EnvelopeSeries", "mua_envelope"]


@dataclass
class EnvelopeSeries:
    """An in-memory series with the attributes :func:`~.continuous.window_means` reads."""

    name: str
    data: np.ndarray
    rate: float
    starting_time: float
    unit: str
    conversion: float = 1.0
    offset: float = 0.0
    timestamps: None = None
    electrodes: Any = None


def _recording_from_series(series: Any) -> Any:
    """Wrap an NWB TimeSeries (data time x channel, read lazily) as a spikeinterface recording."""
    from spikeinterface.core import BaseRecording, BaseRecordingSegment

    data = series.data
    if len(data.shape) != 2:
        raise InputError(
            f"series {series.name!r} has data shape {tuple(data.shape)}; raw voltage must be "
            "(time, channel)"
        )
    if series.rate is not None:
        fs = float(series.rate)
        t0 = float(series.starting_time or 0.0)
    else:
        ts = np.asarray(series.timestamps[: min(len(series.timestamps), 100_000)])
        steps = np.diff(ts)
        if len(steps) == 0 or np.ptp(steps) > 1e-3 * np.median(steps):
            raise InputError(
                f"series {series.name!r} has irregular timestamps; the MUA envelope needs a "
                "regularly sampled signal"
            )
        fs, t0 = 1.0 / float(np.median(steps)), float(ts[0])

    class _Segment(BaseRecordingSegment):
        def __init__(self) -> None:
            BaseRecordingSegment.__init__(self, sampling_frequency=fs, t_start=t0)

        def get_num_samples(self) -> int:
            return int(data.shape[0])

        def get_traces(self, start_frame: Any, end_frame: Any, channel_indices: Any) -> Any:
            block = np.asarray(data[start_frame:end_frame])
            return block if channel_indices is None else block[:, channel_indices]

    class _Recording(BaseRecording):
        def __init__(self) -> None:
            BaseRecording.__init__(self, fs, list(range(int(data.shape[1]))), np.dtype(data.dtype))
            self.add_recording_segment(_Segment())

    return _Recording()


def mua_envelope(
    source: Any,
    *,
    band: tuple[float, float] = (500.0, 9000.0),
    lowpass: float = 200.0,
    rate: float = 1000.0,
    filter_order: int = 4,
    chunk_duration: float = 10.0,
    progress: bool = True,
) -> EnvelopeSeries:
    """Compute the MUA envelope of raw voltage.

    Parameters
    ----------
    source : pynwb TimeSeries / ElectricalSeries, or spikeinterface BaseRecording
        Raw voltage (time x channel), sampled fast enough for ``band`` (> 18 kHz by default).
    band : (float, float)
        Band-pass corner frequencies (Hz).
    lowpass : float
        Low-pass cut-off after rectification (Hz).
    rate : float
        Output sampling rate (Hz).
    filter_order : int
        Butterworth order (filters run forward and backward: zero phase).
    chunk_duration : float
        Seconds of output computed per chunk.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    EnvelopeSeries
        ``data`` float32 (n_samples at ``rate``, n_channels), in the units of the source (its
        ``conversion`` applied), ``starting_time`` of the source.
    """
    try:
        import spikeinterface.preprocessing as spre
        from spikeinterface.core import BaseRecording
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the MUA envelope needs spikeinterface: pip install 'irfa-nwb[ephys]'"
        ) from err
    from scipy.signal import iirfilter
    from tqdm.auto import tqdm

    if isinstance(source, BaseRecording):
        rec, name, unit, scale = source, "recording", "uV", 1.0
    else:
        rec = _recording_from_series(source)
        name, unit = source.name, str(getattr(source, "unit", "volts"))
        scale = abs(float(getattr(source, "conversion", 1.0) or 1.0))
    fs = rec.get_sampling_frequency()
    lo, hi = (float(b) for b in band)
    if not 0 < lo < hi < fs / 2:
        raise InputError(
            f"band-pass {lo:g}-{hi:g} Hz needs a sampling rate above {2 * hi:g} Hz; "
            f"the signal is sampled at {fs:g} Hz. Is this raw voltage? (processed MUA / LFP "
            "should be read without envelope=True)"
        )
    if not 0 < lowpass < rate / 2:
        raise InputError(f"lowpass ({lowpass:g} Hz) must be below half the output rate ({rate:g})")
    rec = spre.bandpass_filter(
        rec, freq_min=lo, freq_max=hi, filter_order=filter_order, dtype="float32"
    )
    rec = spre.rectify(rec)
    sos = iirfilter(filter_order, lowpass, fs=fs, btype="lowpass", ftype="butter", output="sos")
    rec = spre.filter(
        rec, coeff=sos, filter_mode="sos", margin_ms=5 * 1000.0 / lowpass, dtype="float32"
    )
    rec = spre.resample(rec, resample_rate=rate)
    out_rate = rec.get_sampling_frequency()
    n = rec.get_num_samples(segment_index=0)
    step = max(1, int(chunk_duration * out_rate))
    out = np.empty((n, rec.get_num_channels()), dtype=np.float32)
    for start in tqdm(range(0, n, step), desc=f"MUA envelope of {name}", disable=not progress):
        end = min(n, start + step)
        out[start:end] = rec.get_traces(segment_index=0, start_frame=start, end_frame=end)
    out *= scale
    t0 = float(rec.get_times(segment_index=0)[0]) if n else 0.0
    return EnvelopeSeries(
        name=f"{name}_mua_envelope",
        data=out,
        rate=float(out_rate),
        starting_time=t0,
        unit=unit,
        electrodes=getattr(source, "electrodes", None),
    )
