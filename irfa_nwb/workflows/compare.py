"""Compare IRFA and the ridge baseline (or any models) on an NWB file: table, figure, results NWB.

What ``irfa-nwb compare SOURCE OUTPUT`` runs: :func:`compare_nwb` loads the data the usual
way, calls :func:`irfa_nwb.compare` (same splits, several seeds, paired bootstrap intervals of
every difference), writes the comparison into a new results NWB file and a PNG figure, and
logs the text table on the ``irfa_nwb.workflows`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.compare import BUILTIN_METRICS, Metric
from ..outputs import check_output_path
from .fit import load_selected, select_reliable

logger = logging.getLogger("irfa_nwb.workflows")

__all__ = ["CompareOutcome", "compare_nwb", "default_estimators", "default_figure_path"]


@dataclass
class CompareOutcome:
    """What :func:`compare_nwb` produced."""

    results: Any  # xarray.Dataset of irfa_nwb.compare
    results_path: Path
    figure_path: Path | None
    table: str

    def __str__(self) -> str:
        where = f"results: {self.results_path}"
        if self.figure_path is not None:
            where += f"; figure: {self.figure_path}"
        return f"{self.table}\n{where}"


def default_estimators(
    model_kwargs: Mapping[str, Any] | None = None,
    ridge_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """IRFA and the ridge baseline, reconstructing at the same size.

    Parameters
    ----------
    model_kwargs : mapping, optional
        Passed to :class:`irfa_nwb.IRFA`.
    ridge_kwargs : mapping, optional
        Passed to :class:`irfa_nwb.RidgeReconstruction`; its ``image_size`` defaults to
        IRFA's, so both are scored at the same resolution.

    Returns
    -------
    dict
        ``{"IRFA": IRFA(...), "ridge": RidgeReconstruction(...)}`` (unfitted).
    """
    from .. import IRFA, RidgeReconstruction

    irfa = IRFA(**dict(model_kwargs or {}))
    ridge = dict(ridge_kwargs or {})
    ridge.setdefault("image_size", irfa.image_size)
    return {"IRFA": irfa, "ridge": RidgeReconstruction(**ridge)}


def default_figure_path(output: str | Path) -> Path:
    """Where :func:`compare_nwb` puts the figure by default: ``<output stem>_comparison.png``."""
    output = Path(output)
    return output.with_name(f"{output.stem}_comparison.png")


def compare_nwb(
    source: Any,
    output: str | Path,
    *,
    estimators: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    ridge_kwargs: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    test_size: float | int = 0.1,
    load_kwargs: Mapping[str, Any] | None = None,
    min_reliability: float | None = None,
    metrics: Sequence[str | Metric] = BUILTIN_METRICS,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    random_state: int | None = 0,
    use_split: bool = True,
    train_on: str = "averages",
    figure: bool = True,
    figure_path: str | Path | None = None,
    overwrite: bool = False,
) -> CompareOutcome:
    """Load a data set, compare models on it with :func:`irfa_nwb.compare`, write the results.

    Output paths are checked before anything is loaded or fitted. The results NWB file (a
    new file, :func:`irfa_nwb.write_results`) holds the comparison tables
    (``irfa_per_metric``, ``irfa_per_pair``, ``irfa_per_model``, ``irfa_per_seed``,
    ``irfa_per_stimulus_id``...) and records the source; :func:`irfa_nwb.read_results` gives
    the comparison Dataset back, and :func:`irfa_nwb.comparison_table` prints it.

    Parameters
    ----------
    source : path, DANDI address, URL or xarray.Dataset
        NWB file to read with :func:`irfa_nwb.load_dataset` (``load_kwargs``), or data
        already loaded (e.g. :func:`irfa_nwb.simulate_recording`).
    output : path
        Results NWB file to write.
    estimators : mapping of str to estimator, optional
        The models (unfitted); default :func:`default_estimators` (IRFA with
        ``model_kwargs`` and ridge with ``ridge_kwargs``).
    model_kwargs, ridge_kwargs : mapping, optional
        Parameters of the default models (ignored when ``estimators`` is given).
    seeds, test_size, metrics, n_bootstrap, confidence, random_state, use_split, train_on
        As for :func:`irfa_nwb.compare`.
    load_kwargs : mapping, optional
        Passed to :func:`irfa_nwb.load_dataset` (``images=``, ``window=``...).
    min_reliability : float, optional
        Keep only units whose split-half reliability exceeds this (needs repeats).
    figure : bool, default True
        Write the :func:`~irfa_nwb.analysis.compare.plot_comparison` figure (PNG).
    figure_path : path, optional
        Where (default :func:`default_figure_path`).
    overwrite : bool, default False
        Replace existing output files.

    Returns
    -------
    CompareOutcome
        The comparison Dataset, the written paths and the text table (``str(outcome)``).
    """
    import xarray as xr

    from ..analysis.compare import compare, comparison_table, plot_comparison
    from ..analysis.figures import save_figure
    from ..errors import InputError
    from ..results import write_results

    output = check_output_path(output, overwrite=overwrite, what="results file")
    fig_path = None
    if figure:
        fig_path = check_output_path(figure_path or default_figure_path(output),
                                     overwrite=overwrite, what="figure")
        if fig_path == output:
            raise InputError("the figure and the results file need different paths")
    if isinstance(source, xr.Dataset):
        if load_kwargs:
            raise InputError("load_kwargs apply to a file; the source is already loaded")
        dataset, source_ref = source, None
    else:
        dataset, source_ref = load_selected(source, load_kwargs, None), source
    dataset = select_reliable(dataset, min_reliability)
    models = dict(estimators) if estimators is not None else default_estimators(
        model_kwargs, ridge_kwargs)
    results = compare(models, dataset, seeds=seeds, test_size=test_size, metrics=metrics,
                      n_bootstrap=n_bootstrap, confidence=confidence,
                      random_state=random_state, use_split=use_split, train_on=train_on)
    path = Path(write_results(output, results, source=source_ref, overwrite=overwrite))
    if fig_path is not None:
        fig_path = save_figure(plot_comparison(results), fig_path)
    table = comparison_table(results)
    logger.info("%s", table)
    logger.info("wrote %s%s", path, f" and {fig_path}" if fig_path is not None else "")
    return CompareOutcome(results=results, results_path=path, figure_path=fig_path, table=table)
