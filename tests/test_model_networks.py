"""Generator, discriminator, history buffer, perceptual loss and pretrained weights."""

from __future__ import annotations

import pytest
import torch
import torchvision

from irfa_nwb.errors import MissingWeightsError
from irfa_nwb.model.generator import HistoryBuffer, PatchDiscriminator, UNetGenerator, unet_depth
from irfa_nwb.model.losses import PerceptualLoss, adversarial_loss
from irfa_nwb.model.network import IRFANetwork
from irfa_nwb.model.pretrained import load_torchvision_model, weights_path


@pytest.mark.parametrize(("size", "depth"), [(16, 4), (32, 5), (64, 5), (128, 5)])
def test_unet_shapes_and_range(size, depth):
    assert unet_depth(size) == depth
    gen = UNetGenerator(8, size, width=8)
    out = gen(torch.randn(2, 8, size, size))
    assert out.shape == (2, 3, size, size)
    assert out.min() >= 0 and out.max() <= 1


def test_published_widths():
    gen = UNetGenerator(32, 64)
    assert gen.stem.out_channels == 64
    convs = [m for m in gen.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512, 512]
    assert unet_depth(64) == 5
    with pytest.raises(ValueError, match="divisible by 4"):
        unet_depth(18)


def test_discriminator_patch_logits():
    disc = PatchDiscriminator(8 + 3, width=8)
    logits = disc(torch.randn(2, 8, 64, 64), torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 1, 4, 4)
    loss_real = adversarial_loss(torch.full((2, 1), 10.0), True)
    loss_fake = adversarial_loss(torch.full((2, 1), 10.0), False)
    assert loss_real < 1e-3 and loss_fake > 9


def test_history_buffer_fills_then_replays():
    buf = HistoryBuffer(size=4, p=0.5, generator=torch.Generator().manual_seed(0))
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(buf(first), first)  # filling: passes through
    assert len(buf.items) == 4
    later = -torch.arange(1.0, 201.0).view(200, 1)
    out = buf(later)
    replayed = (out != later).sum().item()
    assert 60 < replayed < 140  # about half are swapped for stored older fakes
    assert torch.equal(HistoryBuffer(size=0)(later), later)
    assert torch.equal(HistoryBuffer(size=2, p=0.0)(torch.ones(5, 1)), torch.ones(5, 1))


def test_irfa_network_end_to_end():
    net = IRFANetwork([3, 5], channels=8, image_size=16, width=8)
    out = net([torch.randn(4, 3), torch.randn(4, 5)])
    assert out.shape == (4, 3, 16, 16)


def test_perceptual_single_pass_keeps_the_network_frozen_and_in_eval():
    """(Equality with the reference's per-layer recomputation: tests/test_model_reference.py.)"""
    torch.manual_seed(0)
    features = torchvision.models.vgg19(weights=None).features
    loss = PerceptualLoss(features, input_size=32)
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss(pred, torch.rand(2, 3, 16, 16)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())
    assert len(loss.features) == 35  # nothing beyond the deepest compared slice is run
    loss.train()
    assert not loss.features.training  # VGG stays in eval mode


def test_perceptual_rejects_bad_layers():
    features = torchvision.models.vgg19(weights=None).features
    with pytest.raises(ValueError, match="slice ends"):
        PerceptualLoss(features, layers=(40,))
    with pytest.raises(ValueError, match="slice ends"):
        PerceptualLoss(features, layers=(0, 8))


def test_pretrained_weights_missing_gives_actionable_error(empty_torch_home):
    with pytest.raises(MissingWeightsError) as info:
        load_torchvision_model("vgg19")
    message = str(info.value)
    assert str(empty_torch_home) in message
    assert "perceptual_weight=0" in message and "allow_download=True" in message
    assert "vgg19(weights='IMAGENET1K_V1')" in message
    with pytest.raises(MissingWeightsError):
        PerceptualLoss()


def test_pretrained_weights_loaded_from_torch_cache(fake_vgg19):
    assert weights_path("vgg19").is_file()
    model = load_torchvision_model("vgg19")
    assert torch.equal(model.features[0].weight, fake_vgg19["features.0.weight"])
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    loss = PerceptualLoss(input_size=32)
    assert torch.equal(loss.features[0].weight, fake_vgg19["features.0.weight"])


def test_corrupt_weights_file_gives_clear_error(empty_torch_home):
    path = weights_path("vgg19")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="Could not load pretrained vgg19"):
        load_torchvision_model("vgg19")


def test_unknown_network():
    with pytest.raises(ValueError, match="unknown pretrained network"):
        load_torchvision_model("resnet")
