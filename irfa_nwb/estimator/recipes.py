"""Training recipes: the published reference procedure and the pix2pix-practice alternative.

``IRFA(recipe="published")`` (the default) trains as the authors' public reference code does
(``neuralcodinglab/IRFA``, ``training/train.py``); ``IRFA(recipe="pix2pix")`` carries the
choices of common conditional-GAN practice that irfa-nwb 0.1 used. Every choice is also an
estimator parameter of its own: a parameter left at ``None`` takes the recipe's value, one set
explicitly wins over the recipe. The user guide's "Training recipes" section gives the reasons.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

#: the choices a recipe makes, with the value of each recipe
RECIPES: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {
        "published": MappingProxyType(
            {
                # D updated when the batch index within the epoch is a multiple of 100
                "discriminator_every": 100,
                # D ends in a sigmoid and is scored with BCE-with-logits (sigmoid twice)
                "discriminator_output": "sigmoid",
                # the generator's adversarial term reaches the attention layer through D's
                # condition as well as through the image
                "condition_gradient": True,
                # innermost U-Net block keeps BN and LeakyReLU(0.2)
                "bottleneck_norm": True,
                # reference initialisation on the U-Net only
                "init": "unet",
                # float32 everywhere
                "mixed_precision": False,
                # BN running statistics as the reference's extra forward passes leave them
                "running_stats": "reference",
            }
        ),
        "pix2pix": MappingProxyType(
            {
                "discriminator_every": 1,
                "discriminator_output": "logits",
                "condition_gradient": False,
                "bottleneck_norm": False,
                "init": "all",
                "mixed_precision": "auto",
                "running_stats": "standard",
            }
        ),
    }
)

#: estimator parameters a recipe fills in when they are None
RECIPE_PARAMETERS: tuple[str, ...] = tuple(RECIPES["published"])

#: allowed values of the recipe parameters that are not plain numbers / booleans
CHOICES: MappingProxyType[str, tuple[Any, ...]] = MappingProxyType(
    {
        "discriminator_output": ("sigmoid", "logits"),
        "condition_gradient": (True, False),
        "bottleneck_norm": (True, False),
        "init": ("unet", "all"),
        "mixed_precision": ("auto", True, False),
        "running_stats": ("reference", "standard"),
    }
)


def resolve_recipe(recipe: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The recipe's settings with every non-None value of ``overrides`` put in its place.

    Raises
    ------
    ValueError
        Unknown recipe, or an override outside its allowed values.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}; got {recipe!r}")
    settings = dict(RECIPES[recipe])
    for name, value in overrides.items():
        if name not in settings:
            raise ValueError(f"{name!r} is not a recipe setting ({', '.join(settings)})")
        if value is None:
            continue
        allowed = CHOICES.get(name)
        if allowed is not None and not any(_same(value, a) for a in allowed):
            raise ValueError(f"{name} must be one of {allowed} or None; got {value!r}")
        settings[name] = value
    return settings


def _same(value: Any, allowed: Any) -> bool:
    """``value == allowed`` without counting 1 as True or 0 as False."""
    return isinstance(value, bool) == isinstance(allowed, bool) and value == allowed


def reference_momentum(momentum: float, passes: int) -> float:
    """Batch-norm momentum equal to ``passes`` updates with the same batch statistics.

    A running statistic updated ``k`` times with the same batch value ``s`` becomes
    ``(1 - m)^k r + (1 - (1 - m)^k) s``: one update with momentum ``1 - (1 - m)^k``.
    """
    return 1.0 - (1.0 - momentum) ** passes


__all__ = ["CHOICES", "RECIPES", "RECIPE_PARAMETERS", "reference_momentum", "resolve_recipe"]
