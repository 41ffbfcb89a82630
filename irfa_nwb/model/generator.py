"""pix2pix-style U-Net generator that turns the attention output into an RGB image."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .init import init_weights

#: feature widths of the published U-Net, outermost first
UNET_WIDTHS = (64, 128, 256, 512, 512)


def unet_depth(image_size: int, max_depth: int = len(UNET_WIDTHS)) -> int:
    """Number of stride-2 levels the U-Net uses for ``image_size``.

    The published network has 5 levels (64 px → 2 px at the bottleneck). Smaller images use
    fewer levels so that the bottleneck stays at least 1 pixel; the image size must be divisible
    by ``2**depth``.
    """
    depth = 0
    size = image_size
    while depth < max_depth and size % 2 == 0 and size >= 2:
        size //= 2
        depth += 1
    if depth < 2:
        raise ValueError(
            f"image_size={image_size} is not divisible by 4; the U-Net needs at least two "
            "stride-2 levels (use e.g. 32, 64 or 128)"
        )
    return depth


class _SkipBlock(nn.Module):
    """One U-Net level: down-sample, inner block, up-sample, concatenate the skip.

    The innermost block (``sub`` None) of the published network keeps batch norm after its
    down-convolution and a LeakyReLU(0.2) before its up-convolution
    (``bottleneck_norm=True``); pix2pix drops that batch norm and uses a ReLU there.
    """

    def __init__(
        self, outer: int, inner: int, sub: nn.Module | None, bottleneck_norm: bool = True
    ) -> None:
        super().__init__()
        down = [nn.LeakyReLU(0.2), nn.Conv2d(outer, inner, 4, 2, 1, bias=False)]
        up_act: nn.Module = nn.ReLU()
        if sub is not None:
            down.append(nn.BatchNorm2d(inner))
            up_in = inner * 2
        else:
            up_in = inner
            if bottleneck_norm:
                down.append(nn.BatchNorm2d(inner))
                up_act = nn.LeakyReLU(0.2)
        self.down = nn.Sequential(*down)
        self.sub = sub if sub is not None else nn.Identity()
        self.up = nn.Sequential(
            up_act, nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.up(self.sub(self.down(x)))], dim=1)


class UNetGenerator(nn.Module):
    """U-Net from ``in_channels`` feature maps to a 3-channel image in [0, 1].

    Conv(in → 64, 4, s2) + LeakyReLU(0.2), nested skip blocks 64 → 128 → 256 → 512 → 512
    (Conv 4/s2 + BN + LeakyReLU down, ConvTranspose 4/s2 + BN up, concatenation + ReLU), and
    ConvTranspose(128 → 3, 4, s2) + Sigmoid. (Activations sit at the start of each block here
    rather than at the end of the previous one, as in pix2pix's code; the function is the same,
    because ``relu(leaky_relu(t)) == relu(t)``.)

    Parameters
    ----------
    in_channels : int
        Channels of the attention output.
    image_size : int
        Side of the (square) input and output; sets the number of levels (:func:`unet_depth`).
    out_channels : int, default 3
    width : int, default 64
        Width of the first level; all level widths scale with it (published: 64).
    bottleneck_norm : bool, default True
        Innermost block as in the published reference code (BN after the down-convolution,
        LeakyReLU(0.2) before the up-convolution); False gives pix2pix's (no BN, ReLU).
    init : bool, default True
        Apply the reference's initialisation (:func:`~irfa_nwb.model.init.init_weights`);
        False keeps PyTorch's defaults.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        out_channels: int = 3,
        width: int = 64,
        *,
        bottleneck_norm: bool = True,
        init: bool = True,
    ) -> None:
        super().__init__()
        widths = [w * width // 64 for w in UNET_WIDTHS[: unet_depth(image_size)]]
        block: nn.Module | None = None
        for outer, inner in reversed(list(zip(widths[:-1], widths[1:], strict=True))):
            block = _SkipBlock(outer, inner, block, bottleneck_norm)
        self.stem = nn.Conv2d(in_channels, widths[0], 4, 2, 1)
        self.body = block
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(widths[0] * 2, out_channels, 4, 2, 1),
            nn.Sigmoid(),
        )
        if init:
            init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head[-1](self.logits(x))

    def logits(self, x: Tensor) -> Tensor:
        """The output before its final sigmoid."""
        return self.head[:-1](self.body(self.stem(x)))


#: what the discriminator's last layer gives: the published network ends in a sigmoid
DISCRIMINATOR_OUTPUTS = ("sigmoid", "logits")


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN on ``concat(attention output, image)``.

    Conv 4/s2 64 → 128 → 256 (BN, LeakyReLU 0.2), Conv 4/s1 512, Conv 3/s2 → 1; all widths
    scale with ``width`` (published: 64).

    Parameters
    ----------
    in_channels : int
        Attention channels + 3.
    width : int, default 64
    output : {"sigmoid", "logits"}, default "sigmoid"
        The published network ends in ``nn.Sigmoid()`` and its losses then apply
        ``BCEWithLogitsLoss`` to that output: the sigmoid is applied twice, so each loss term
        is bounded (between ``log(1 + e^-1) ≈ 0.31`` and ``log 2 ≈ 0.69`` for a real target)
        and its gradient is small. ``"logits"`` returns raw scores (the usual GAN loss).
    init : bool, default False
        Apply the reference's U-Net initialisation; the reference code leaves the
        discriminator at PyTorch's defaults.
    """

    def __init__(
        self, in_channels: int, width: int = 64, *, output: str = "sigmoid", init: bool = False
    ) -> None:
        super().__init__()
        if output not in DISCRIMINATOR_OUTPUTS:
            raise ValueError(f"output must be one of {DISCRIMINATOR_OUTPUTS}, got {output!r}")
        self.output = output
        w1, w2, w3, w4 = width, 2 * width, 4 * width, 8 * width

        def block(cin: int, cout: int, k: int, s: int, norm: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, 1, bias=not norm)]
            if norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            return layers

        self.net = nn.Sequential(
            *block(in_channels, w1, 4, 2, norm=False),
            *block(w1, w2, 4, 2),
            *block(w2, w3, 4, 2),
            *block(w3, w4, 4, 1),
            nn.Conv2d(w4, 1, 3, 2, 1),
        )
        if init:
            init_weights(self)

    def forward(self, condition: Tensor, image: Tensor) -> Tensor:
        out = self.net(torch.cat([condition, image], dim=1))
        return torch.sigmoid(out) if self.output == "sigmoid" else out


class HistoryBuffer:
    """Pool of past fakes replayed to the discriminator (pix2pix / CycleGAN practice).

    As in the reference code: each incoming sample is stored while the pool is not full;
    afterwards, with probability ``p`` a random stored sample is taken out of the pool and
    returned instead, and the incoming one is appended at the end of the pool.

    Parameters
    ----------
    size : int, default 50
        Capacity; 0 disables the buffer.
    p : float, default 0.5
        Replay probability.
    generator : torch.Generator, optional
        Source of randomness (for reproducible training).
    """

    def __init__(self, size: int = 50, p: float = 0.5, generator=None) -> None:
        self.size = size
        self.p = p
        self.generator = generator
        self.items: list[Tensor] = []

    def __call__(self, batch: Tensor) -> Tensor:
        if self.size == 0:
            return batch
        out = []
        for sample in batch.detach():
            if len(self.items) < self.size:
                self.items.append(sample.clone())
                out.append(sample)
                continue
            draw = torch.rand(1, generator=self.generator).item()
            if draw < self.p:
                j = int(torch.randint(len(self.items), (1,), generator=self.generator))
                out.append(self.items.pop(j))
                self.items.append(sample.clone())
            else:
                out.append(sample)
        return torch.stack(out)

    def state_dict(self) -> dict:
        """The stored samples (for checkpoints)."""
        return {"items": list(self.items)}

    def load_state_dict(self, state: dict) -> None:
        self.items = list(state["items"])
