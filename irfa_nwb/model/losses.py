"""Training losses of IRFA: pixel L1, adversarial BCE and the VGG19 perceptual loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: indices in ``torchvision.models.vgg19().features`` whose outputs the published loss compares
VGG19_LAYERS = (8, 15, 22, 29, 35)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """Mean L1 distance between VGG19 features of two images.

    Both images (in [0, 1]) are resized to ``input_size`` and ImageNet-normalised, then run once
    through the VGG19 feature stack up to the deepest requested layer, collecting the output of
    every layer in ``layers`` on the way. Target features are computed without autograd. The
    loss is the mean over layers of the mean absolute feature difference.

    Parameters
    ----------
    features : torch.nn.Sequential, optional
        A VGG19 ``features`` stack. Default: the pretrained torchvision one, loaded with
        :func:`irfa_nwb.model.pretrained.load_torchvision_model` (clear error when missing).
    layers : sequence of int, default ``(8, 15, 22, 29, 35)``
        Indices into ``features`` whose *outputs* are compared.
    input_size : int, default 224
        Side the images are resized to (bilinear) before the network, as published.
    allow_download : bool, default False
        Passed on to the weights loader when ``features`` is not given.
    """

    def __init__(
        self,
        features: nn.Sequential | None = None,
        layers: Sequence[int] = VGG19_LAYERS,
        input_size: int = 224,
        allow_download: bool = False,
    ) -> None:
        super().__init__()
        if features is None:
            from .pretrained import load_torchvision_model

            features = load_torchvision_model("vgg19", allow_download=allow_download).features
        layers = sorted(set(int(i) for i in layers))
        if not layers or layers[0] < 0 or layers[-1] >= len(features):
            raise ValueError(f"layers must index into the {len(features)} feature modules")
        self.layers = tuple(layers)
        self.input_size = int(input_size)
        self.features = features[: layers[-1] + 1].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # the feature network never leaves eval mode
        return self

    def extract(self, image: Tensor) -> list[Tensor]:
        """Features at ``self.layers`` of images ``(n, 3, H, W)`` in [0, 1] (one pass)."""
        x = image
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        x = (x - self.mean) / self.std
        x = x.contiguous(memory_format=torch.channels_last)
        out = []
        wanted = set(self.layers)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out.append(x)
        return out

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            target_features = self.extract(target)
        predicted = self.extract(prediction)
        losses = [F.l1_loss(p, t) for p, t in zip(predicted, target_features, strict=True)]
        return torch.stack(losses).mean()


def adversarial_loss(logits: Tensor, real: bool) -> Tensor:
    """Binary cross-entropy of discriminator logits against all-real or all-fake labels."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)
