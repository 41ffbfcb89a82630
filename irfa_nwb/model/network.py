"""The IRFA generator network: attention layer followed by the U-Net."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .attention import InverseReceptiveFieldAttention
from .generator import UNetGenerator
from .init import init_weights

#: initialisation schemes of :class:`IRFANetwork`
NETWORK_INITS = ("unet", "all")


class IRFANetwork(nn.Module):
    """Responses of ``H`` electrode groups → attention feature map → RGB image.

    Parameters
    ----------
    head_sizes : sequence of int
        Units per head.
    channels, image_size, kernel_size :
        See :class:`~irfa_nwb.model.attention.InverseReceptiveFieldAttention`.
    attention : {"factorized", "dense"}
        Implementation of the attention layer.
    width : int, default 64
        Width of the U-Net's first level (published: 64).
    bottleneck_norm : bool, default True
        Innermost U-Net block as published (see :class:`UNetGenerator`).
    init : {"unet", "all"}, default "unet"
        ``"unet"`` (the reference code): the reference's initialisation on the U-Net only, the
        attention layer at PyTorch's defaults; ``"all"``: the same initialisation everywhere.
    linear_prior : bool, default False
        Not in the published model (``IRFA(ridge_residual=True)``): the network also holds a
        linear (ridge) map from the responses to an image, the U-Net sees that image next to
        the attention output, and its output is a correction of it in logit space,
        ``sigmoid(logit(prior) + unet(features, prior))``. The map's buffers
        (``prior_mean``, ``prior_scale``, ``prior_coef``, ``prior_intercept``; responses in
        head order, i.e. the heads' columns concatenated) are set with :meth:`set_prior`.
    """

    #: the prior image is clamped to [eps, 1 - eps] before its logit
    PRIOR_EPS = 1e-3

    def __init__(
        self,
        head_sizes: Sequence[int],
        channels: int = 32,
        image_size: int = 64,
        kernel_size: int = 4,
        attention: str = "factorized",
        width: int = 64,
        *,
        bottleneck_norm: bool = True,
        init: str = "unet",
        linear_prior: bool = False,
    ) -> None:
        super().__init__()
        if init not in NETWORK_INITS:
            raise ValueError(f"init must be one of {NETWORK_INITS}, got {init!r}")
        self.attention = InverseReceptiveFieldAttention(
            len(head_sizes),
            channels,
            image_size,
            kernel_size,
            head_sizes=list(head_sizes),
            implementation=attention,
            init="default" if init == "unet" else "kaiming",
        )
        self.generator = UNetGenerator(
            channels + (3 if linear_prior else 0), image_size, width=width,
            bottleneck_norm=bottleneck_norm, init=True,
        )
        self.linear_prior = bool(linear_prior)
        if linear_prior:
            # the correction starts at exactly zero: the untrained network gives the prior
            final = self.generator.head[1]
            nn.init.zeros_(final.weight)
            nn.init.zeros_(final.bias)
            n_units, n_pixels = int(sum(head_sizes)), 3 * image_size * image_size
            self.image_size = int(image_size)
            self.register_buffer("prior_mean", torch.zeros(n_units))
            self.register_buffer("prior_scale", torch.ones(n_units))
            self.register_buffer("prior_coef", torch.zeros(n_pixels, n_units))
            self.register_buffer("prior_intercept", torch.full((n_pixels,), 0.5))

    def set_prior(self, mean, scale, coef, intercept) -> None:
        """Set the linear map (standardisation, ``(3·i·i, n_units)`` weights on channels-first
        flattened pixels, intercept), e.g. from
        :func:`irfa_nwb.estimator.ridge.ridge_map` on the responses in head order."""
        for name, value in (("prior_mean", mean), ("prior_scale", scale),
                            ("prior_coef", coef), ("prior_intercept", intercept)):
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype).reshape(buffer.shape))

    def prior_image(self, inputs: Sequence[Tensor]) -> Tensor:
        """The linear map's image ``(n, 3, i, i)`` (not clipped) of per-head responses."""
        x = torch.cat(list(inputs), dim=1)
        z = (x - self.prior_mean) / self.prior_scale
        flat = z @ self.prior_coef.T + self.prior_intercept
        return flat.reshape(len(x), 3, self.image_size, self.image_size)

    def forward(
        self, inputs: Sequence[Tensor], with_attention: bool = False, prior: Tensor | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """The image ``(n, 3, i, i)``; with ``with_attention=True``, ``(attention output,
        image)`` (the discriminator is conditioned on the first). ``prior``: the linear
        prior's image of these inputs when ``linear_prior`` is on (default: computed from
        them with the stored map; training passes out-of-fold images instead)."""
        features = self.attention(inputs)
        if self.linear_prior:
            if prior is None:
                prior = self.prior_image(inputs)
            prior = prior.to(features.dtype).clamp(self.PRIOR_EPS, 1 - self.PRIOR_EPS)
            correction = self.generator.logits(torch.cat([features, prior], dim=1))
            image = torch.sigmoid(torch.logit(prior) + correction)
        else:
            image = self.generator(features)
        return (features, image) if with_attention else image

    def forward_with_attention(self, inputs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Return ``(attention output, image)``."""
        return self.forward(inputs, with_attention=True)


def split_heads(x: Tensor, index: Sequence[Tensor]) -> list[Tensor]:
    """Split responses ``(n, n_units)`` into per-head tensors by column indices."""
    return [x.index_select(1, i) for i in index]


__all__ = ["NETWORK_INITS", "IRFANetwork", "init_weights", "split_heads"]
