"""Saving fitted models to one safetensors file (no pickle), and reading them back.

The file holds the weights of the generator network (and discriminator) as tensors, and in
its metadata the estimator parameters, the fitted state (:mod:`~irfa_nwb.estimator.state`:
head layout, unit ids, training stimuli, the responses' kind / window / units, training
history, whether the fit was interrupted), where the training data came from, and the
package / torch versions. :func:`irfa_nwb.load_model` turns it back into an estimator.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from .._atomic import atomic_path
from .._version import __version__
from ..errors import InputError
from ..outputs import check_output_path
from .state import fitted_state

FORMAT = "irfa-nwb-model"
#: 1: irfa-nwb 0.1; 2: recipes, full fitted state, training-data provenance; 3: checkpoints
#: (a model file plus the training state needed to continue it)
FORMAT_VERSION = 3
#: prefix of the training-state tensors inside a checkpoint
STATE_PREFIX = "state."


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, tuple | list | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def save_model(
    est,
    path,
    *,
    overwrite: bool = True,
    warn_callbacks: bool = True,
    training_state: tuple[dict, dict] | None = None,
) -> Path:
    """Write ``est`` to ``path`` atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    est : IRFA
        A fitted estimator.
    path : path-like
    overwrite : bool, default True
        Replace an existing file (:meth:`IRFA.save` passes its own ``overwrite``).
    warn_callbacks : bool
        Warn that callbacks are not saved.
    training_state : (dict of tensors, JSON-able dict), optional
        Makes the file a checkpoint: the tensors are stored under ``state.`` and the rest in
        the ``training_state`` metadata (see :mod:`irfa_nwb.estimator.checkpoint`).
    """
    import torch
    from safetensors.torch import save_file

    path = check_output_path(path, overwrite=overwrite, what="model file")
    params = est.get_params(deep=False)
    if params.get("callbacks") and warn_callbacks:
        warnings.warn("callbacks are not saved with the model", UserWarning, stacklevel=3)
    params["callbacks"] = None
    tensors = {f"network.{k}": v for k, v in est.network_.state_dict().items()}
    if est.discriminator_ is not None:
        tensors.update(
            {f"discriminator.{k}": v for k, v in est.discriminator_.state_dict().items()}
        )
    if training_state is not None:
        tensors.update({STATE_PREFIX + k: v for k, v in training_state[0].items()})
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "irfa_nwb_version": __version__,
        "torch_version": torch.__version__,
        "params": json.dumps({k: _jsonable(v) for k, v in params.items()}),
        "fitted": json.dumps(fitted_state(est), allow_nan=True),
        "training_data": json.dumps(getattr(est, "training_data_", {}) or {}),
    }
    if training_state is not None:
        metadata["training_state"] = json.dumps(training_state[1], allow_nan=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_model_file(path) -> tuple[dict, dict, dict, dict]:
    """``(params, fitted state, training-data provenance, metadata)`` of a saved model.

    Files written by irfa-nwb 0.1 (format 1) are upgraded: their networks were built the
    pix2pix way, so ``recipe="pix2pix"``.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved IRFA model at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as err:
        raise InputError(f"{path} is not a saved IRFA model (safetensors): {err}") from err
    if meta.get("format") != FORMAT:
        raise InputError(f"{path} is a safetensors file but not a saved IRFA model")
    version = int(meta.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise InputError(
            f"{path} was written by a newer irfa-nwb ({meta.get('irfa_nwb_version')}); "
            "upgrade irfa-nwb to load it"
        )
    params = json.loads(meta["params"])
    fitted = json.loads(meta["fitted"])
    if version < 2:
        params["recipe"] = "pix2pix"
        for old, new in (("epochs", "max_iter"),):
            if old in params:
                params[new] = params.pop(old)
        if params.get("discriminator_every") == 1:
            params["discriminator_every"] = None
        if params.get("mixed_precision") == "auto":
            params["mixed_precision"] = None
        patience = params.pop("early_stopping", None)
        params["early_stopping"] = patience is not None
        if patience is not None:
            params["n_iter_no_change"] = int(patience)
        if params.get("validation_fraction") == 0.0:
            params["validation_fraction"] = 0.1
        fitted["n_iter_"] = fitted.pop("n_epochs_", 0)
        fitted["history_"] = json.loads(meta.get("history", "[]"))
    if isinstance(params.get("perceptual_layers"), list):
        params["perceptual_layers"] = tuple(params["perceptual_layers"])
    training = json.loads(meta.get("training_data", "{}"))
    return params, fitted, training, meta


__all__ = ["FORMAT", "FORMAT_VERSION", "STATE_PREFIX", "read_model_file", "save_model"]
