"""Saving and loading fitted IRFA models (safetensors; no pickle)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._version import __version__
from ..errors import InputError

FORMAT = "irfa-nwb-model"
FORMAT_VERSION = 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def save_model(est, path, *, warn_callbacks: bool = True) -> Path:
    """Write ``est`` to ``path`` (atomic: temporary file in the same folder, then rename).

    The file is a safetensors archive: the weights of the generator network (and
    discriminator) as tensors, and in its metadata the estimator parameters, the fitted head
    layout, the training history and the package / torch versions.
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    params = est.get_params(deep=False)
    if params.get("callbacks") and warn_callbacks:
        warnings.warn("callbacks are not saved with the model", UserWarning, stacklevel=3)
    params["callbacks"] = None
    tensors = {f"network.{k}": v for k, v in est.network_.state_dict().items()}
    if est.discriminator_ is not None:
        tensors.update(
            {f"discriminator.{k}": v for k, v in est.discriminator_.state_dict().items()}
        )
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    fitted = {
        "heads_": list(est.heads_),
        "head_units_": [np.asarray(i).tolist() for i in est.head_units_],
        "n_features_in_": int(est.n_features_in_),
        "unit_ids_": None if est.unit_ids_ is None else np.asarray(est.unit_ids_).tolist(),
        "image_size_": int(est.image_size_),
        "device_": str(est.device_),
        "n_epochs_": int(getattr(est, "n_epochs_", 0)),
    }
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "irfa_nwb_version": __version__,
        "torch_version": torch.__version__,
        "params": json.dumps({k: _jsonable(v) for k, v in params.items()}),
        "fitted": json.dumps(fitted),
        "history": json.dumps(getattr(est, "history_", []), allow_nan=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_model(path, *, device: str | None = None):
    """Load a model written by :meth:`IRFA.save`.

    Parameters
    ----------
    path : str or path
    device : str, optional
        Where to put the networks. Default: the device it was trained on, or the CPU (with a
        warning) when that was a CUDA device and none is available here.

    Returns
    -------
    IRFA
        A fitted estimator whose ``predict`` equals the saved one's.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ._training import build_networks
    from .irfa import IRFA

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
    if int(meta.get("format_version", "0")) > FORMAT_VERSION:
        raise InputError(
            f"{path} was written by a newer irfa-nwb ({meta.get('irfa_nwb_version')}); "
            "upgrade irfa-nwb to load it"
        )
    params = json.loads(meta["params"])
    if isinstance(params.get("perceptual_layers"), list):
        params["perceptual_layers"] = tuple(params["perceptual_layers"])
    if "recipe" not in params:
        # written by irfa-nwb 0.1, whose networks were built the pix2pix way
        params["recipe"] = "pix2pix"
        if params.get("discriminator_every") == 1:
            params["discriminator_every"] = None
        if params.get("mixed_precision") == "auto":
            params["mixed_precision"] = None
    fitted = json.loads(meta["fitted"])
    est = IRFA(**params)
    est.recipe_ = est._resolve_recipe()
    saved_device = fitted["device_"]
    if device is None:
        device = saved_device
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"model was trained on {saved_device} but CUDA is not available here; "
                "loading it on the CPU",
                UserWarning,
                stacklevel=2,
            )
            device = "cpu"
    tensors = load_file(str(path), device="cpu")
    network, discriminator = build_networks(est, [len(i) for i in fitted["head_units_"]])
    network.load_state_dict(
        {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
    )
    disc_state = {
        k[len("discriminator.") :]: v for k, v in tensors.items() if k.startswith("discriminator.")
    }
    if discriminator is not None and disc_state:
        discriminator.load_state_dict(disc_state)
        discriminator = discriminator.to(device).eval()
    else:
        discriminator = None
    est.network_ = network.to(device).eval()
    est.discriminator_ = discriminator
    est.heads_ = list(fitted["heads_"])
    est.head_units_ = [np.asarray(i, dtype=np.int64) for i in fitted["head_units_"]]
    est.n_features_in_ = int(fitted["n_features_in_"])
    est.unit_ids_ = None if fitted["unit_ids_"] is None else np.asarray(fitted["unit_ids_"])
    est.image_size_ = int(fitted["image_size_"])
    est.device_ = str(device)
    est.n_epochs_ = int(fitted.get("n_epochs_", 0))
    est.history_ = json.loads(meta.get("history", "[]"))
    est.saved_versions_ = {
        "irfa_nwb": meta.get("irfa_nwb_version"),
        "torch": meta.get("torch_version"),
    }
    return est
