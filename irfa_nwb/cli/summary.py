"""``irfa-nwb inspect``: is every byte readable, what does the file hold, what can be fitted.

:func:`summarize_file` first reads every dataset of the file (:func:`irfa_nwb.data.verify_nwb`,
chunk by chunk), so nothing it then reports as usable is damaged; then it lists the responses
(the units table, continuous series), the stimulus tables and whether the images are in the
file, and :meth:`FileSummary.fit_command` builds the ``irfa-nwb fit`` command that uses them.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = ["FileSummary", "ResponseChoice", "StimulusChoice", "summarize_file"]


@dataclass
class ResponseChoice:
    """One source of responses in a file.

    Attributes
    ----------
    value : str
        What ``--responses`` takes to use it (``"units"`` or the series path).
    kind : str
        ``"units table"``, ``"ElectricalSeries"``...
    n : int
        Units (or channels) in it.
    by_area, by_group : dict of str to int
        Usable units per brain area / electrode group (the IRFA heads).
    usable : bool
        Whether it can be fitted on as it is.
    note : str
        Why not, or what to know.
    flags : tuple of str
        Extra options its fit command needs (``--envelope``, ``--quality allen``).
    n_usable : int
        Units the fit command uses (those passing the quality filters of ``flags``).
    rank : int
        Order of preference (0 the units table, 1 processed electrical series...).
    """

    value: str
    kind: str
    n: int
    by_area: dict[str, int] = field(default_factory=dict)
    by_group: dict[str, int] = field(default_factory=dict)
    usable: bool = True
    note: str = ""
    flags: tuple[str, ...] = ()
    n_usable: int = 0
    rank: int = 0


@dataclass
class StimulusChoice:
    """One stimulus series or interval table (a row of ``list_stimulus_tables``)."""

    name: str
    path: str
    kind: str
    n: int
    images_in_file: str | None
    usable: bool
    note: str


@dataclass
class FileSummary:
    """What :func:`summarize_file` found.

    Attributes
    ----------
    source : str
        The file as given.
    report : VerifyReport or None
        The full read of the file (None when it was skipped).
    identifier, description : str
        The NWB file's ``identifier`` and ``session_description``.
    electrodes : dict of str to int
        Electrodes per location.
    responses : list of ResponseChoice
    stimuli : list of StimulusChoice
        Best first.
    """

    source: str
    report: Any = None
    identifier: str = ""
    description: str = ""
    electrodes: dict[str, int] = field(default_factory=dict)
    responses: list[ResponseChoice] = field(default_factory=list)
    stimuli: list[StimulusChoice] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when reading the file found damage."""
        return self.report is None or bool(self.report.ok)

    def best_responses(self) -> ResponseChoice | None:
        """The first usable source of responses (units before series)."""
        return next((r for r in self.responses if r.usable and r.n_usable), None)

    def best_stimuli(self) -> StimulusChoice | None:
        """The best usable stimulus table (the one ``load_dataset`` would pick)."""
        return next((s for s in self.stimuli if s.usable), None)

    def fit_command(self, output: str | None = None) -> list[str] | None:
        """The ``irfa-nwb fit`` command line (a list of words) for the best choices, or None.

        Parameters
        ----------
        output : str, optional
            Results file (default: ``<stem of the source>_irfa.nwb``).
        """
        responses, stimuli = self.best_responses(), self.best_stimuli()
        if responses is None or stimuli is None:
            return None
        if output is None:
            stem = Path(urlparse(self.source).path or self.source).stem or "results"
            output = f"{stem}_irfa.nwb"
        words = ["irfa-nwb", "fit", self.source, output, "--presentations", stimuli.name,
                 "--responses", responses.value, *responses.flags]
        if stimuli.images_in_file is None:
            words += ["--images", "IMAGES"]
        return words

    def lines(self) -> list[str]:
        """The text that ``irfa-nwb inspect`` prints."""
        out = [f"{self.source}: identifier {self.identifier!r}"]
        if self.description:
            out.append(f"  {self.description}")
        if self.report is None:
            out.append("file check: skipped (--no-verify): damaged data would show only when read")
        else:
            n = len(self.report.datasets)
            out.append(
                f"file check: OK, every dataset read completely ({n} datasets, "
                f"{self.report.seconds:.1f} s)"
            )
        if self.electrodes:
            out.append("electrodes by location: " + _counts(self.electrodes))
        out.append("")
        out.append("responses:")
        if not self.responses:
            out.append("  none: no units table and no continuous series")
        for r in self.responses:
            state = "usable" if r.usable and r.n_usable else "not usable"
            what = "units" if r.value == "units" else "channels"
            out.append(f"  --responses {r.value}: {r.kind}, {r.n} {what}, {state}"
                       + (f"; {r.note}" if r.note else ""))
        out.append("")
        out.append("stimulus tables (best first):")
        if not self.stimuli:
            out.append("  none: no stimulus series and no interval tables")
        for s in self.stimuli:
            images = (f"images in the file ({s.images_in_file})" if s.images_in_file
                      else "images NOT in the file")
            state = "usable" if s.usable else "not usable"
            out.append(f"  --presentations {s.name}: {s.kind} {s.path}, {s.n} presentations, "
                       f"{state}, {images}; {s.note}")
        out.append("")
        out += self._fit_lines()
        return out

    def _fit_lines(self) -> list[str]:
        responses, stimuli = self.best_responses(), self.best_stimuli()
        out = ["what can be fitted:"]
        if responses is None:
            out.append("  nothing: the file has no usable responses (a units table with spike "
                       "times, or a continuous series of MUA in processing/)")
        if stimuli is None:
            out.append("  nothing: no usable stimulus table (an IndexSeries over images, an "
                       "image series with embedded frames, or an interval table with an image "
                       "column)")
            if any(s.kind == "TimeIntervals" for s in self.stimuli):
                out.append("  if a table names the shown image in another column: "
                           "--presentations TABLE --image-column COLUMN --images IMAGES")
        if responses is None or stimuli is None:
            return out
        flags = f" ({' '.join(responses.flags)})" if responses.flags else ""
        out.append(f"  responses: {responses.kind} --responses {responses.value}{flags}: "
                   f"{responses.n_usable} usable units")
        out.append(f"    by area: {_counts(responses.by_area)}")
        out.append(f"    by electrode group (IRFA heads, {len(responses.by_group)}): "
                   f"{_counts(responses.by_group)}")
        others = [r.value for r in self.responses if r is not responses and r.usable]
        if others:
            out.append(f"    also possible: --responses {' / '.join(others)}")
        out.append(f"  stimuli: {stimuli.kind} {stimuli.path} ({stimuli.n} presentations)")
        if stimuli.images_in_file:
            out.append(f"  images: in the file ({stimuli.images_in_file})")
        else:
            out.append("  images: NOT in the file; pass them with --images (a folder of image "
                       "files named by the table's image column, or the files)")
        command = self.fit_command()
        assert command is not None
        out.append("")
        out.append("fit it with:")
        out.append("  " + shlex.join(command))
        notes = []
        if "--images" in command:
            notes.append("IMAGES: the images, which this file does not hold")
        notes.append("the published model needs the pretrained VGG19 weights (downloaded on "
                     "first use unless IRFA_NWB_OFFLINE is set); add --perceptual-weight 0 to "
                     "train without them. irfa-nwb fit --help lists every option")
        out += [f"  ({note})" for note in notes]
        return out


def _text_or_none(value: Any) -> str | None:
    import pandas as pd

    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _units_choice(nwb: Any) -> ResponseChoice | None:
    import numpy as np

    from ..data.tables import colnames, read_ragged
    from ..data.units import ALLEN_QUALITY, unit_metadata
    from ..errors import NWBLayoutError

    table = nwb.units
    if table is None or len(table) == 0:
        return None
    n = len(table)
    try:
        meta = unit_metadata(nwb)
        _, ends = read_ragged(table, "spike_times")
    except NWBLayoutError as err:
        return ResponseChoice("units", "units table", n, usable=False, note=str(err))
    silent = np.diff(np.r_[0, ends]) == 0
    keep = np.ones(n, dtype=bool)
    notes = []
    flags: tuple[str, ...] = ()
    if all(column in colnames(table) for column in ALLEN_QUALITY):
        passing = set(unit_metadata(nwb, quality="allen")["unit_id"].tolist())
        keep = meta["unit_id"].isin(passing).to_numpy()
        notes.append(f"{int(keep.sum())} of {n} pass the AllenSDK quality filters "
                     "(--quality allen)")
        flags = ("--quality", "allen")
    if (keep & silent).any():
        notes.append(f"{int((keep & silent).sum())} of them have no spikes at all")
    used = meta[keep]
    return ResponseChoice(
        "units", "units table (spike times)", n,
        by_area=dict(Counter(used["area"].astype(str))),
        by_group=dict(Counter(used["electrode_group"].astype(str))),
        usable=bool((keep & ~silent).any()), note="; ".join(notes), flags=flags,
        n_usable=int(keep.sum()),
    )


def _series_choices(nwb: Any) -> list[ResponseChoice]:
    """Continuous series, neural ones first: processed (``processing/``) electrical series,
    then other processed series, then raw voltage in ``acquisition/`` (MUA via ``--envelope``).
    Other series in ``acquisition/`` are not responses."""
    from pynwb.ecephys import ElectricalSeries

    from ..data.continuous import channel_metadata, list_series
    from ..errors import NWBLayoutError

    out = []
    for path, series in list_series(nwb):
        shape = tuple(series.data.shape)
        kind = type(series).__name__
        n = shape[1] if len(shape) > 1 else 1
        electrical = isinstance(series, ElectricalSeries)
        raw = path.startswith("acquisition/")
        rank = (1 if electrical else 2) if not raw else 3
        if len(shape) > 2:
            out.append(ResponseChoice(path, kind, n, usable=False, rank=rank,
                                      note=f"data of shape {shape}: not (time, channel)"))
            continue
        if raw and not electrical:
            out.append(ResponseChoice(path, kind, n, usable=False, rank=9,
                                      note="acquired, not electrophysiology"))
            continue
        try:
            meta = channel_metadata(nwb, series)
        except NWBLayoutError as err:
            out.append(ResponseChoice(path, kind, n, usable=False, rank=rank, note=str(err)))
            continue
        if raw:
            note = "raw voltage: made into MUA with --envelope (needs irfa-nwb[ephys])"
        elif electrical:
            note = "window means of the series"
        else:
            note = "window means; no electrodes (one head, area unknown)"
        out.append(ResponseChoice(
            path, kind, n,
            by_area=dict(Counter(meta["area"].astype(str))),
            by_group=dict(Counter(meta["electrode_group"].astype(str))),
            note=note, flags=("--envelope",) if raw else (), n_usable=n, rank=rank,
        ))
    return sorted(out, key=lambda r: r.rank)


def summarize_file(
    source: str,
    *,
    verify: bool = True,
    sha256: str | None = None,
    open_kwargs: dict[str, Any] | None = None,
) -> FileSummary:
    """Read a file completely and list what it offers for fitting.

    Parameters
    ----------
    source : str
        Local path, URL or DANDI address.
    verify : bool
        Read every dataset first (:func:`irfa_nwb.data.verify_nwb`); with False only what the
        summary needs is read.
    sha256 : str, optional
        Expected SHA-256 of the file, checked when verifying.
    open_kwargs : dict, optional
        Streaming options of :func:`irfa_nwb.open_nwb` (``backend``, ``retries``...).

    Returns
    -------
    FileSummary
        When the file is damaged (``not summary.ok``) only ``report`` is filled in.
    """
    import numpy as np

    from ..data import list_stimulus_tables, open_nwb, verify_nwb

    open_kwargs = dict(open_kwargs or {})
    summary = FileSummary(source)
    if verify:
        summary.report = verify_nwb(source, sha256=sha256, **open_kwargs)
        if not summary.report.ok:
            return summary
    with open_nwb(source, **open_kwargs) as nwb:
        summary.identifier = str(nwb.identifier)
        summary.description = " ".join(str(nwb.session_description or "").split())
        electrodes = nwb.electrodes
        if electrodes is not None and len(electrodes):
            locations = np.asarray(electrodes["location"].data[:]).astype(str)
            summary.electrodes = dict(sorted(Counter(locations.tolist()).items()))
        units = _units_choice(nwb)
        summary.responses = ([units] if units is not None else []) + _series_choices(nwb)
        table = list_stimulus_tables(nwb)
    for row in table.itertuples(index=False):
        summary.stimuli.append(StimulusChoice(
            str(row.name), str(row.path), str(row.kind), int(row.n_presentations),
            _text_or_none(row.images_in_file),
            bool(row.usable), str(row.note).replace("pass images=", "pass --images"),
        ))
    return summary
