"""Exactness of the factorised attention layer against the dense (textbook) form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irfa_nwb.model.attention import InverseReceptiveFieldAttention

# parameters whose gradient is analytically zero: the score bias cancels in the softmax over
# heads and the embedding's linear bias is removed by BatchNorm's centring
ZERO_GRAD = ("score_bias", ".0.bias")


def make_layer(
    n_heads=4, channels=8, image_size=16, kernel_size=4, dtype=torch.float32, seed=0,
    init="default",
):
    torch.manual_seed(seed)
    sizes = [5 + h for h in range(n_heads)]
    layer = InverseReceptiveFieldAttention(
        n_heads, channels, image_size, kernel_size, head_sizes=sizes, init=init
    ).to(dtype)
    gen = torch.Generator().manual_seed(seed + 1)
    inputs = [torch.randn(3, s, generator=gen, dtype=dtype) for s in sizes]
    return layer, inputs


def forward_backward(layer, inputs, implementation):
    layer.implementation = implementation
    layer.zero_grad()
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    out = layer(inputs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    (out * weights).sum().backward()
    grads = {name: p.grad.detach().clone() for name, p in layer.named_parameters()}
    grads.update({f"input{h}": x.grad.detach().clone() for h, x in enumerate(inputs)})
    return out.detach(), grads


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize(
    ("kernel_size", "image_size"),
    [(4, 16), (4, 17), (3, 16), (5, 21), (2, 16), (4, 64), (4, 128), (1, 16)],
)
def test_factorised_matches_dense_float32(kernel_size, image_size):
    n_heads = 4 if image_size < 128 else 2
    layer, inputs = make_layer(n_heads=n_heads, image_size=image_size, kernel_size=kernel_size)
    out_f, grads_f = forward_backward(layer, inputs, "factorized")
    out_d, grads_d = forward_backward(layer, inputs, "dense")
    assert out_f.shape == (3, 8, image_size, image_size)
    assert rel_err(out_f, out_d) <= 1e-5
    # border rows and columns (truncated kernels) specifically
    k = kernel_size
    for sl in (np.s_[..., :k, :], np.s_[..., -k:, :], np.s_[..., :, :k], np.s_[..., :, -k:]):
        assert rel_err(out_f[sl], out_d[sl]) <= 1e-5
    for name, grad in grads_d.items():
        if name.endswith(ZERO_GRAD):
            scale = max(float(g.abs().max()) for g in grads_d.values())
            assert float(grads_f[name].abs().max()) <= 1e-5 * scale, name
        else:
            assert rel_err(grads_f[name], grad) <= 1e-5, name


def test_factorised_matches_dense_float64_tightly():
    layer, inputs = make_layer(image_size=20, kernel_size=4, dtype=torch.float64)
    out_f, grads_f = forward_backward(layer, inputs, "factorized")
    out_d, grads_d = forward_backward(layer, inputs, "dense")
    assert rel_err(out_f, out_d) < 1e-12
    for name in grads_d:
        if not name.endswith(ZERO_GRAD):
            assert rel_err(grads_f[name], grads_d[name]) < 1e-10, name


def _make_extreme(layer):
    """Scale scores so that softmax weights are one-hot and naive exponentials underflow.

    Starts from the (larger) Kaiming initialisation, which scaled up reaches scores far enough
    apart for the shifted exponentials to underflow together.
    """
    layer.init = "kaiming"
    layer.reset_parameters()
    with torch.no_grad():
        layer.score_weight.mul_(400.0)
        layer.pos_x.mul_(20.0)
        layer.pos_y.mul_(20.0)


def test_extreme_scores_stay_exact():
    layer64, inputs64 = make_layer(image_size=16, kernel_size=4, dtype=torch.float64)
    _make_extreme(layer64)
    # the case exists: the shifted exponentials underflow together at some pixels
    factors = layer64._factors(inputs64)
    assert factors.underflow is not None and len(factors.underflow[0]) > 0
    out_f, grads_f = forward_backward(layer64, inputs64, "factorized")
    out_d, grads_d = forward_backward(layer64, inputs64, "dense")
    assert torch.isfinite(out_f).all()
    assert rel_err(out_f, out_d) < 1e-10
    for name in grads_d:
        assert torch.isfinite(grads_f[name]).all(), name
        if not name.endswith(ZERO_GRAD):
            assert rel_err(grads_f[name], grads_d[name]) < 1e-8, name

    # float32: no NaN/inf, and no less accurate than the dense float32 form
    layer32, inputs32 = make_layer(image_size=16, kernel_size=4, dtype=torch.float32)
    _make_extreme(layer32)
    f32, g32 = forward_backward(layer32, inputs32, "factorized")
    d32, _ = forward_backward(layer32, inputs32, "dense")
    assert all(torch.isfinite(g).all() for g in g32.values())
    truth = out_d.float()
    assert rel_err(f32, truth) <= 10 * rel_err(d32, truth) + 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fields_match_dense(dtype):
    layer, inputs = make_layer(image_size=18, kernel_size=4, dtype=dtype)
    layer.eval()
    with torch.no_grad():
        weights = layer.attention_weights(inputs)
        layer.implementation = "factorized"
        spatial = layer.spatial_fields(inputs)
        feature = layer.feature_fields(inputs)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert spatial.shape == (3, 4, 18, 18) and feature.shape == (3, 4, 8)
    assert rel_err(spatial, weights.mean(dim=2)) <= tol
    assert rel_err(feature, weights.sum(dim=(3, 4))) <= tol
    # a softmax over heads: the maps sum to one at every pixel
    assert torch.allclose(spatial.sum(dim=1), torch.ones(3, 18, 18, dtype=dtype), atol=tol)


def test_fields_exact_with_underflow():
    layer, inputs = make_layer(image_size=16, dtype=torch.float64)
    _make_extreme(layer)
    layer.eval()
    with torch.no_grad():
        weights = layer.attention_weights(inputs)
        assert layer._factors(inputs).underflow is not None
        assert rel_err(layer.spatial_fields(inputs), weights.mean(dim=2)) < 1e-10
        assert rel_err(layer.feature_fields(inputs), weights.sum(dim=(3, 4))) < 1e-10


def test_no_full_size_tensor_is_kept_for_backward():
    """The factorised graph never saves an (n, H, c, i, i) tensor (the dense one does)."""
    layer, inputs = make_layer(n_heads=6, image_size=24)
    n, h, c, i = 3, 6, 8, 24
    biggest = {}

    def pack(t):
        biggest["numel"] = max(biggest.get("numel", 0), t.numel())
        return t

    for implementation in ("factorized", "dense"):
        biggest.clear()
        layer.implementation = implementation
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(inputs).sum().backward()
        if implementation == "factorized":
            assert biggest["numel"] <= n * c * i * i
        else:
            assert biggest["numel"] >= n * h * c * i * i


def test_lazy_head_sizes_and_validation():
    layer = InverseReceptiveFieldAttention(2, 8, 16, 4)
    assert layer.head_sizes == [None, None]
    out = layer([torch.randn(4, 3), torch.randn(4, 5)])
    assert out.shape == (4, 8, 16, 16)
    assert layer.head_sizes == [3, 5]
    with pytest.raises(ValueError, match="expected a list of 2"):
        layer([torch.randn(4, 3)])
    with pytest.raises(ValueError, match="even"):
        InverseReceptiveFieldAttention(2, 7, 16)
    with pytest.raises(ValueError, match="at least kernel_size"):
        InverseReceptiveFieldAttention(2, 8, 3, 4)
    with pytest.raises(ValueError, match="implementation"):
        layer.implementation = "fast"


def test_half_precision_inputs_are_computed_in_float32():
    layer, inputs = make_layer()
    layer.eval()
    with torch.no_grad():
        ref = layer(inputs)
        out = layer([x.to(torch.bfloat16) for x in inputs])
    assert out.dtype == torch.float32
    assert rel_err(out, ref) < 0.05


def test_border_strips_factorised_and_fallback_paths(monkeypatch):
    """Border strips use the factorised line formula, and the direct one when it underflows."""
    calls = []
    original = InverseReceptiveFieldAttention._line_attention

    def spy(*args):
        result = original(*args)
        calls.append(result is None)
        return result

    monkeypatch.setattr(InverseReceptiveFieldAttention, "_line_attention", staticmethod(spy))
    layer, inputs = make_layer(image_size=16, dtype=torch.float64)
    out_f, _ = forward_backward(layer, inputs, "factorized")
    assert calls == [False, False]  # rows and columns, factorised
    out_d, _ = forward_backward(layer, inputs, "dense")
    assert rel_err(out_f, out_d) < 1e-12
    calls.clear()
    _make_extreme(layer)
    out_f, _ = forward_backward(layer, inputs, "factorized")
    assert True in calls  # underflow: direct strips
    out_d, _ = forward_backward(layer, inputs, "dense")
    assert rel_err(out_f, out_d) < 1e-10
