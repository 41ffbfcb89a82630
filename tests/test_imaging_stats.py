"""The shared image conversion / resizing helpers and Pearson r."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irfa_nwb.errors import InputError
from irfa_nwb.imaging import resize_images, to_float_images
from irfa_nwb.stats import pearson_r, pearson_rows


@pytest.mark.parametrize(
    ("shape", "size"),
    [((3, 37, 53, 3), (16, 16)), ((2, 16, 16, 1), (64, 48)), ((2, 64, 64, 3), (64, 32)),
     ((1, 7, 9, 3), (3, 3)), ((2, 20, 20, 3), (21, 19))],
)
def test_resize_equals_torch_antialiased_bilinear(shape, size):
    rng = np.random.default_rng(0)
    images = rng.random(shape, dtype=np.float32)
    ours = resize_images(images, size)
    t = torch.from_numpy(images).permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(
        t, size=size, mode="bilinear", antialias=True, align_corners=False
    ).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 2e-6


def test_resize_keeps_same_size_and_validates():
    x = np.zeros((2, 8, 8, 3), np.float32)
    assert resize_images(x, 8) is x
    with pytest.raises(InputError, match="n, y, x, channel"):
        resize_images(np.zeros((8, 8)), 4)


def test_to_float_images_conversions():
    u8 = np.array([[[0, 255]]], dtype=np.uint8)  # (1, 1, 2) grey
    out = to_float_images(u8)
    assert out.shape == (1, 1, 2, 3) and out.dtype == np.float32
    assert np.allclose(out[0, 0, :, 0], [0, 1])
    assert to_float_images(u8, channels=None).shape == (1, 1, 2, 1)
    u16 = np.array([[[0, 65535]]], dtype=np.uint16)
    assert np.allclose(to_float_images(u16)[0, 0, :, 0], [0, 1])
    small16 = np.array([[[0, 200]]], dtype=np.uint16)  # 8-bit values stored as uint16
    assert np.allclose(to_float_images(small16)[0, 0, :, 0], [0, 200 / 255])
    rgba = np.ones((1, 2, 2, 4), np.float32)
    assert to_float_images(rgba).shape == (1, 2, 2, 3)
    assert to_float_images(np.ones((1, 2, 2), bool)).max() == 1


@pytest.mark.parametrize(
    ("bad", "match"),
    [(np.full((1, 2, 2, 3), 2.0), r"\[0, 1\]"), (np.full((1, 2, 2, 3), np.nan), "NaN"),
     (np.zeros((1, 3, 2, 2)), "channel"), (np.zeros((0, 2, 2, 3)), "no images"),
     (np.array([[[-1]]], dtype=np.int16), "negative"), (np.array([[["a"]]]), "numeric")],
)
def test_to_float_images_errors(bad, match):
    with pytest.raises(InputError, match=match):
        to_float_images(bad, name="y")


def test_pearson_rows_and_r():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 4, 3))
    b = 2 * a + 1
    assert np.allclose(pearson_rows(a, b), 1.0)
    assert np.allclose(pearson_rows(a, -a), -1.0)
    c = rng.normal(size=(5, 12))
    expected = [np.corrcoef(a.reshape(5, -1)[k], c[k])[0, 1] for k in range(5)]
    assert np.allclose(pearson_rows(a.reshape(5, -1), c), expected)
    assert np.isnan(pearson_rows(np.ones((1, 3)), c[:1, :3])[0])
    assert pearson_r(a, b) == pytest.approx(1.0)
    with pytest.raises(InputError):
        pearson_rows(a, c)
