"""Fit on an NWB file and write the results; predict with a saved model (used by the CLI)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..estimator.distributed import is_main_process
from ..outputs import check_output_path

logger = logging.getLogger("irfa_nwb.workflows")

__all__ = ["FitOutcome", "fit_nwb", "predict_nwb"]


@dataclass
class FitOutcome:
    """What :func:`fit_nwb` produced."""

    estimator: Any
    results_path: Path | None
    model_path: Path
    interrupted: bool = False


def load_selected(source: Any, load_kwargs: Mapping[str, Any] | None,
                  min_reliability: float | None) -> Any:
    """``load_dataset(source, **load_kwargs)``, then the units above ``min_reliability``."""
    from .. import load_dataset

    dataset = load_dataset(source, **dict(load_kwargs or {}))
    logger.info("loaded %d stimuli x %d units", dataset.sizes["stimulus_id"],
                dataset.sizes["unit"])
    return select_reliable(dataset, min_reliability)


def select_reliable(dataset: Any, min_reliability: float | None) -> Any:
    """The units of ``dataset`` above ``min_reliability`` (all of them for None), logged."""
    from .. import select_units

    if min_reliability is None:
        return dataset
    dataset = select_units(dataset, min_reliability=min_reliability)
    logger.info("kept %d units with reliability > %s", dataset.sizes["unit"], min_reliability)
    return dataset


def _default_model_path(output: str | Path) -> Path:
    return Path(output).with_suffix(".safetensors")


def _saved_when_interrupted(path: Path) -> bool:
    """Whether ``path`` holds the model an interrupted fit saved (a resumed fit replaces it)."""
    from ..estimator.persistence import read_model_file

    if not Path(path).is_file():
        return False
    try:
        _params, fitted, _training, _meta = read_model_file(path)
    except (OSError, ValueError):  # not a model file (InputError is a ValueError)
        return False
    return bool(fitted.get("interrupted_"))


def fit_nwb(
    source: Any,
    output: str | Path,
    *,
    model_path: str | Path | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    test_size: float = 0.1,
    min_reliability: float | None = None,
    train_on: str = "averages",
    random_state: int | None = 0,
    overwrite: bool = False,
    resume_from: str | Path | None = None,
) -> FitOutcome:
    """Load a data set, fit IRFA on its training stimuli and write a results NWB file.

    Both output paths are checked before anything is loaded or trained (writable folder, no
    unwanted overwrite), so a finished fit is never lost at the end. When the fit is
    interrupted (Ctrl-C), the model of the last finished epoch is saved to ``model_path`` and
    no results file is written.

    Parameters
    ----------
    source : path, DANDI address or URL
        NWB file to read (see :func:`irfa_nwb.load_dataset`).
    output : path
        Results NWB file to write (a new file; see :func:`irfa_nwb.write_results`).
    model_path : path, optional
        Where to save the fitted model (default: next to ``output``, ``.safetensors``).
    load_kwargs : mapping, optional
        Passed to :func:`irfa_nwb.load_dataset` (``images=``, ``window=``, ``windows=``...).
    model_kwargs : mapping, optional
        Passed to :class:`irfa_nwb.IRFA`.
    test_size : float
        Fraction of stimuli held out when the data set has no designated test split.
    min_reliability : float, optional
        Keep only units whose split-half reliability exceeds this (needs repeats).
    train_on : {"averages", "presentations"}
        Fit on the repeat-averaged responses of each training stimulus (default), or on every
        single presentation.
    random_state : int or None
        Seed of the split.
    overwrite : bool
        Replace existing output files.
    resume_from : path, optional
        Continue an interrupted fit from its checkpoint (``model_kwargs`` must hold the same
        parameters, and the data must be loaded the same way). The model file that the
        interrupted fit saved at ``model_path`` is then replaced without ``overwrite``; any
        other existing model file is still refused.

    Returns
    -------
    FitOutcome

    Notes
    -----
    Under ``torchrun`` every process loads the data and takes part in the fit; only rank 0
    writes the model and the results (the other ranks return ``results_path=None``).
    """
    from .. import IRFA, average_repeats, evaluate, split_stimuli
    from ..results import write_results

    if train_on not in ("averages", "presentations"):
        raise ValueError(f"train_on must be 'averages' or 'presentations'; got {train_on!r}")
    output = check_output_path(output, overwrite=overwrite, what="results file")
    model_path = Path(model_path or _default_model_path(output))
    model_path = check_output_path(
        model_path, what="model file",
        overwrite=overwrite or (resume_from is not None and _saved_when_interrupted(model_path)),
    )
    dataset = load_selected(source, load_kwargs, min_reliability)
    train, test = split_stimuli(dataset, test_size=test_size, random_state=random_state)
    if train_on == "averages":
        train = average_repeats(train)
    logger.info("fitting on %d stimuli, holding out %d", train.sizes["stimulus_id"],
                test.sizes["stimulus_id"])
    estimator = IRFA(**dict(model_kwargs or {})).fit(
        train["responses"], train["images"], resume_from=resume_from
    )
    if not is_main_process():
        return FitOutcome(estimator, None, model_path, interrupted=estimator.interrupted_)
    estimator.save(model_path, overwrite=True)  # checked above, before the fit
    if estimator.interrupted_:
        logger.warning("fit interrupted: %s holds the model after epoch %d of %d", model_path,
                       estimator.n_iter_, estimator.max_iter)
        return FitOutcome(estimator, None, model_path, interrupted=True)
    results = evaluate(estimator, test)
    path = write_results(output, results, source=source, overwrite=overwrite)
    logger.info("wrote %s and %s", path, model_path)
    return FitOutcome(estimator, Path(path), model_path)


def predict_nwb(
    model: Any,
    source: Any,
    output: str | Path,
    *,
    load_kwargs: Mapping[str, Any] | None = None,
    check_responses: bool = True,
    overwrite: bool = False,
) -> Path:
    """Reconstruct the stimuli of an NWB file with a saved model and write a results file.

    The responses are loaded with the window(s) and time bins the model was fitted on unless
    ``load_kwargs`` says otherwise, and must be of the same kind (spike counts, MUA...)
    unless ``check_responses=False``. The results record the model file and its checksum and
    mark the stimuli the model was trained on (``stimulus_role``).

    Parameters
    ----------
    model : path or IRFA
        A saved model (:meth:`IRFA.save`) or a fitted estimator.
    source : path, DANDI address or URL
    output : path
        Results NWB file to write.
    load_kwargs : mapping, optional
        Passed to :func:`irfa_nwb.load_dataset`.
    check_responses : bool
        Refuse responses of another kind / window / unit than the model's.
    overwrite : bool
        Replace an existing results file.
    """
    from .. import evaluate, load_dataset, load_model
    from ..results import write_results

    output = check_output_path(output, overwrite=overwrite, what="results file")
    estimator = load_model(model) if isinstance(model, str | Path) else model
    kwargs = dict(load_kwargs or {})
    fitted = getattr(estimator, "response_attrs_", None) or {}
    if "window" in fitted and "window" not in kwargs and "windows" not in kwargs:
        kwargs["window"] = tuple(fitted["window"])
    if "bins" in fitted and "bins" not in kwargs:
        kwargs["bins"] = fitted["bins"]
    if "latency" in fitted and "latency" not in kwargs:
        kwargs["latency"] = fitted["latency"]
    dataset = load_dataset(source, **kwargs)
    results = evaluate(estimator, dataset, check_responses=check_responses)
    path = write_results(output, results, source=source, overwrite=overwrite)
    logger.info("wrote %s", path)
    return Path(path)
