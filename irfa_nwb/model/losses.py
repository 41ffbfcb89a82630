"""Training losses of IRFA: pixel L1, adversarial BCE and the VGG19 perceptual loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: slice ends of the published loss: it compares ``vgg19.features[:i](x)`` for these ``i``,
#: i.e. the outputs of modules 7, 14, 21, 28 and 34 (conv2_2, conv3_3, conv4_2, conv5_1 and
#: conv5_4, before their ReLU)
VGG19_LAYERS = (8, 15, 22, 29, 35)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """Mean L1 distance between VGG19 features of two images, as the reference code computes it.

    Both images (in [0, 1]) are resized to ``input_size`` (bilinear, ``align_corners=False``)
    and ImageNet-normalised; the loss is the mean over ``layers`` of the mean absolute
    difference between ``features[:i](prediction)`` and ``features[:i](target)``. With the
    published slice ends these are convolution outputs *before* their ReLU (negative values
    kept).

    The reference runs the network prefix again from the input for every layer, for both
    images. Here one pass collects every tapped output on the way (copied out of reach of
    torchvision's in-place ReLU that follows it), and the target's features are computed
    without autograd: the same numbers, several times cheaper.

    Parameters
    ----------
    features : torch.nn.Sequential, optional
        A VGG19 ``features`` stack. Default: the pretrained torchvision one, loaded with
        :func:`irfa_nwb.model.pretrained.load_torchvision_model` (clear error when missing).
    layers : sequence of int, default ``(8, 15, 22, 29, 35)``
        Slice ends ``i``: the output of ``features[:i]`` is compared (``1 <= i <=
        len(features)``).
    input_size : int, default 224
        Side the images are resized to before the network, as published.
    allow_download : bool or None, default None
        Passed on to the weights loader when ``features`` is not given.
    """

    def __init__(
        self,
        features: nn.Sequential | None = None,
        layers: Sequence[int] = VGG19_LAYERS,
        input_size: int = 224,
        allow_download: bool | None = None,
    ) -> None:
        super().__init__()
        if features is None:
            from .pretrained import load_torchvision_model

            features = load_torchvision_model("vgg19", allow_download=allow_download).features
        layers = sorted(set(int(i) for i in layers))
        if not layers or layers[0] < 1 or layers[-1] > len(features):
            raise ValueError(
                f"layers are slice ends features[:i]; each i must lie in 1..{len(features)}, "
                f"got {tuple(layers)}"
            )
        self.layers = tuple(layers)
        self.input_size = int(input_size)
        self.features = features[: layers[-1]].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # the feature network never leaves eval mode
        return self

    def extract(self, image: Tensor) -> list[Tensor]:
        """``features[:i](x)`` for every ``i`` in ``self.layers``, from one pass.

        ``image`` is ``(n, 3, H, W)`` in [0, 1]; it is resized and normalised first.
        """
        x = image
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        x = (x - self.mean) / self.std
        x = x.contiguous(memory_format=torch.channels_last)
        out = []
        ends = set(self.layers)
        for index, module in enumerate(self.features):
            if index in ends and getattr(module, "inplace", False):
                # the tapped tensor must survive: run this in-place module out of place
                x = F.relu(x) if isinstance(module, nn.ReLU) else module(x.clone())
            else:
                x = module(x)
            if index + 1 in ends:
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
