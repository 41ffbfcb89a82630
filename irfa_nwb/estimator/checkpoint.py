"""Checkpoints: a saved model plus everything needed to continue its training exactly.

A checkpoint is a model file (:func:`~irfa_nwb.estimator.persistence.save_model`, format 3):
:func:`irfa_nwb.load_model` reads it as the model of the last finished epoch. It also holds,
under ``state.``, the training state: both optimisers, the gradient scalers, the
discriminator's history buffer, the random-number generators, the best weights seen by early
stopping, the epoch and the batch position, and a fingerprint of the training data.
``IRFA.fit(X, y, resume_from=path)`` (``irfa-nwb fit --resume PATH``) continues from it and ends
with the weights an uninterrupted fit would have had.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .persistence import STATE_PREFIX, read_model_file


def data_fingerprint(X: np.ndarray, image_index: np.ndarray, images: np.ndarray) -> str:
    """SHA-256 of the training responses, the row → image index and the target images."""
    digest = hashlib.sha256()
    for array in (X, image_index, images):
        a = np.ascontiguousarray(array)
        digest.update(str((a.dtype, a.shape)).encode())
        digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def flatten_optimizer(name: str, state: dict, tensors: dict, plain: dict) -> None:
    """Put an optimiser's ``state_dict`` into ``tensors`` (its tensors) and ``plain`` (the rest)."""
    steps: dict[str, dict[str, Any]] = {}
    for pid, values in state["state"].items():
        entry: dict[str, Any] = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{name}.{pid}.{key}"] = value
                entry[key] = "tensor"
            else:
                entry[key] = value
        steps[str(pid)] = entry
    plain[name] = {"state": steps, "param_groups": state["param_groups"]}


def unflatten_optimizer(name: str, tensors: dict, plain: dict) -> dict:
    """The inverse of :func:`flatten_optimizer`."""
    record = plain[name]
    state: dict[int, dict[str, Any]] = {}
    for pid, entry in record["state"].items():
        state[int(pid)] = {
            key: tensors[f"{name}.{pid}.{key}"] if value == "tensor" else value
            for key, value in entry.items()
        }
    return {"state": state, "param_groups": record["param_groups"]}


def read_training_state(path: str | Path) -> tuple[dict, dict, dict]:
    """``(params, tensors of the training state, plain training state)`` of a checkpoint."""
    from safetensors.torch import load_file

    params, _fitted, _training, meta = read_model_file(path)
    if "training_state" not in meta:
        raise InputError(
            f"{path} is a saved model without a training state: it can be loaded with "
            "irfa_nwb.load_model but not resumed. Resume from a checkpoint written with "
            "IRFA(checkpoint_path=...)"
        )
    tensors = load_file(str(path), device="cpu")
    state = {k[len(STATE_PREFIX):]: v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
    network = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
    disc = {k[len("discriminator."):]: v for k, v in tensors.items()
            if k.startswith("discriminator.")}
    state["__network__"] = network  # type: ignore[assignment]
    state["__discriminator__"] = disc  # type: ignore[assignment]
    return params, state, json.loads(meta["training_state"])


__all__ = [
    "data_fingerprint",
    "flatten_optimizer",
    "read_training_state",
    "unflatten_optimizer",
]
