"""The fitted state of an :class:`~irfa_nwb.IRFA` estimator, defined once.

``fit`` sets these attributes, :func:`~irfa_nwb.estimator.persistence.save_model` writes them,
:func:`~irfa_nwb.load_model` restores them: all three use :data:`FITTED_ATTRIBUTES`,
:func:`fitted_state` and :func:`restore_state`, and build the networks with
:func:`build_networks`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: JSON-serialisable fitted attributes (the networks are stored as tensors)
FITTED_ATTRIBUTES: tuple[str, ...] = (
    "heads_",
    "head_units_",
    "head_areas_",
    "n_features_in_",
    "unit_ids_",
    "image_size_",
    "device_",
    "n_iter_",
    "recipe_",
    "mixed_precision_",
    "history_",
    "training_stimulus_ids_",
    "response_attrs_",
    "interrupted_",
    "ridge_alpha_",
)

#: attributes stored as arrays (lists in JSON)
_ARRAYS = ("unit_ids_", "training_stimulus_ids_")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def fitted_state(est: Any) -> dict[str, Any]:
    """The fitted attributes of ``est`` as plain JSON-able data."""
    return {name: _plain(getattr(est, name, None)) for name in FITTED_ATTRIBUTES}


def restore_state(est: Any, state: dict[str, Any]) -> None:
    """Set the fitted attributes of ``est`` from :func:`fitted_state` output."""
    for name in FITTED_ATTRIBUTES:
        value = state.get(name)
        if name == "head_units_":
            value = [np.asarray(i, dtype=np.int64) for i in value]
        elif name in _ARRAYS and value is not None:
            value = np.asarray(value)
        elif name == "history_":
            value = list(value or [])
        elif name == "interrupted_":
            value = bool(value)
        elif name == "n_iter_":
            value = int(value or 0)
        setattr(est, name, value)


def build_networks(est: Any, head_sizes: list[int]):
    """Generator network and (when adversarial training is on) discriminator of ``est``.

    Uses the estimator's parameters and its resolved recipe ``est.recipe_``.
    """
    from ..model.generator import PatchDiscriminator
    from ..model.network import IRFANetwork

    recipe = est.recipe_
    network = IRFANetwork(
        head_sizes,
        est.channels,
        int(est.image_size),
        est.kernel_size,
        attention=est.attention,
        width=est.width,
        bottleneck_norm=recipe["bottleneck_norm"],
        init=recipe["init"],
        linear_prior=bool(getattr(est, "ridge_residual", False)),
    )
    discriminator = None
    if est.adversarial_weight > 0:
        discriminator = PatchDiscriminator(
            est.channels + 3,
            est.width,
            output=recipe["discriminator_output"],
            init=recipe["init"] == "all",
        )
    return network, discriminator


__all__ = ["FITTED_ATTRIBUTES", "build_networks", "fitted_state", "restore_state"]
