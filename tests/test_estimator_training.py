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


@pytest.mark.parametrize(("condition_gradient", "expected_condition_grad"), [(False, False),
                                                                             (True, True)])
def test_adversarial_term_and_the_condition(condition_gradient, expected_condition_grad):
    """pix2pix practice fools D with the image only; the reference (published recipe) also lets
    the adversarial gradient reach the attention layer through D's condition."""
    net, disc, step = _step(condition_gradient=condition_gradient)
    seen = []
    forward = disc.forward

    def spy(condition, image):
        seen.append((condition.requires_grad, image.requires_grad))
        return forward(condition, image)

    disc.forward = spy
    inputs = [torch.randn(4, 3), torch.randn(4, 5)]
    step(inputs, torch.rand(4, 3, 16, 16), 0)
    # D update: fake pair, real pair (nothing needs grad); generator update
    assert seen == [(False, False), (False, False), (expected_condition_grad, True)]
    grads = [p.grad for p in net.attention.parameters()]
    # with only the adversarial term, the attention layer learns only through the condition
    # or through the image; either way it receives a gradient
    assert all(g is not None for g in grads)


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
        IRFA(attention_lr=0.0, image_size=16, max_iter=1, unit_groups=groups).fit(X, images)
    est = IRFA(
        image_size=16, channels=8, width=8, max_iter=1, batch_size=8, attention_lr=1e-2,
        perceptual_weight=0, adversarial_weight=0, random_state=0, unit_groups=groups,
    ).fit(X, images)
    assert est.get_params()["attention_lr"] == 1e-2
