"""The IRFA generator network: attention layer followed by the U-Net."""

from __future__ import annotations

from collections.abc import Sequence

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
    """

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
            channels, image_size, width=width, bottleneck_norm=bottleneck_norm, init=True
        )

    def forward(
        self, inputs: Sequence[Tensor], with_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """The image ``(n, 3, i, i)``; with ``with_attention=True``, ``(attention output,
        image)`` (the discriminator is conditioned on the first)."""
        features = self.attention(inputs)
        image = self.generator(features)
        return (features, image) if with_attention else image

    def forward_with_attention(self, inputs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Return ``(attention output, image)``."""
        return self.forward(inputs, with_attention=True)


def split_heads(x: Tensor, index: Sequence[Tensor]) -> list[Tensor]:
    """Split responses ``(n, n_units)`` into per-head tensors by column indices."""
    return [x.index_select(1, i) for i in index]


__all__ = ["NETWORK_INITS", "IRFANetwork", "init_weights", "split_heads"]
