"""The training step: what each loss term may update, and the attention learning rate."""

from __future__ import annotations

import pytest
import torch

from irfa_nwb import IRFA
from irfa_nwb.errors import InputError
from irfa_nwb.estimator._training import TrainingStep, _parameter_groups
from irfa_nwb.model.generator import PatchDiscriminator
from irfa_nwb.model.network import IRFANetwork


def _step(**kwargs):
    torch.manual_seed(0)
    net = IRFANetwork([3, 5], channels=8, image_size=16, width=8)
    disc = PatchDiscriminator(8 + 3, width=8)
    options = dict(
        pixel_weight=0.0, perceptual_weight=0.0, adversarial_weight=1.0, lr=1e-3,
        discriminator_lr=1e-3, history_size=0,
    )
    options.update(kwargs)
    return net, disc, TrainingStep(net, disc, None, **options)


def test_adversarial_term_does_not_flow_through_the_condition():
    """The generator fools D with its image; the conditioning map gets no adversarial gradient.

    With gradient through the condition, the attention layer learned to rewrite the map D is
    conditioned on (in the demo it collapsed onto one head) instead of reconstructing.
    """
    net, disc, step = _step()
    seen = []
    forward = disc.forward

    def spy(condition, image):
        seen.append((condition.requires_grad, image.requires_grad))
        return forward(condition, image)

    disc.forward = spy
    inputs = [torch.randn(4, 3), torch.randn(4, 5)]
    step(inputs, torch.rand(4, 3, 16, 16))
    # D update: real pair, fake pair (nothing needs grad); generator update: fake image only
    assert seen == [(False, False), (False, False), (False, True)]


def test_attention_lr_parameter_groups():
    net, _, step = _step(attention_lr=5e-3)
    groups = step.opt_g.param_groups
    assert [g["lr"] for g in groups] == [1e-3, 5e-3]
    attention = {id(p) for p in net.attention.parameters()}
    assert {id(p) for p in groups[1]["params"]} == attention
    assert not attention & {id(p) for p in groups[0]["params"]}
    n_all = sum(1 for _ in net.parameters())
    assert sum(len(g["params"]) for g in groups) == n_all
    # default: one group at lr, as published
    assert len(_parameter_groups(net, 1e-3, None)) == 1
    _, _, default = _step()
    assert [g["lr"] for g in default.opt_g.param_groups] == [1e-3]


def test_attention_lr_is_validated_and_used(tiny_data):
    X, images, groups = tiny_data[:3]
    with pytest.raises(InputError, match="attention_lr"):
        IRFA(attention_lr=0.0, image_size=16, epochs=1, verbose=0).fit(X, images, groups=groups)
    est = IRFA(
        image_size=16, channels=8, width=8, epochs=1, batch_size=8, attention_lr=1e-2,
        perceptual_weight=0, adversarial_weight=0, random_state=0, verbose=0,
    ).fit(X, images, groups=groups)
    assert est.get_params()["attention_lr"] == 1e-2
