"""Fit IRFA on an NWB file (local or DANDI) and write the results next to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def fit_nwb(
    source: Any,
    output: str | Path,
    *,
    model_path: str | Path | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    test_size: float = 0.1,
    min_reliability: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
):
    """Load a data set, fit IRFA on the training stimuli and write a results NWB file.

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
    seed : int
        Seed of the split.
    overwrite : bool
        Replace existing output files.

    Returns
    -------
    (IRFA, pathlib.Path, pathlib.Path)
        The fitted estimator, the results file and the saved model.
    """
    from .. import (
        IRFA,
        load_dataset,
        select_units,
        to_training_pair,
        train_test_split,
        write_results,
    )

    output = Path(output)
    model_path = Path(model_path) if model_path else output.with_suffix(".safetensors")
    for path in (output, model_path):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    dataset = load_dataset(source, **dict(load_kwargs or {}))
    log(
        f"loaded {dataset.sizes['presentation']} presentations x {dataset.sizes['unit']} units, "
        f"{dataset.sizes.get('stimulus', 0)} images"
    )
    if min_reliability is not None:
        dataset = select_units(dataset, min_reliability=min_reliability)
        log(f"kept {dataset.sizes['unit']} units with reliability > {min_reliability}")
    train, test = train_test_split(dataset, test_size=test_size, seed=seed)
    X_train, y_train = to_training_pair(train)
    X_test, _ = to_training_pair(test)
    log(f"fitting on {X_train.sizes['stimulus']} stimuli, testing on {X_test.sizes['stimulus']}")
    estimator = IRFA(**dict(model_kwargs or {})).fit(X_train, y_train)
    estimator.save(model_path)
    results = write_results(output, estimator, test, source=source, X=X_test, overwrite=overwrite)
    log(f"wrote {results} and {model_path}")
    return estimator, Path(results), model_path
