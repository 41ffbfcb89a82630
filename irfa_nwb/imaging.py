"""Image arrays: one conversion to float images and one resize, used by every part.

NumPy only (no torch, no pynwb), so the loaders, the estimator, the analyses and the results
writer all convert and resize images the same way.

- :func:`to_float_images`: uint8 / uint16 / bool / float images, grey or colour, to float32
  ``(n, y, x, channel)`` in [0, 1] with a clear error for anything else.
- :func:`resize_images`: antialiased bilinear resizing, the same numbers as torchvision's
  ``Resize`` on tensors (``torch.nn.functional.interpolate(..., mode="bilinear",
  antialias=True, align_corners=False)``), which the reference code uses for its targets.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["resize_images", "to_float_images"]


def to_float_images(
    images: Any, *, channels: int | None = 3, name: str = "images"
) -> np.ndarray:
    """Convert images to float32 ``(n, y, x, channel)`` with values in [0, 1].

    Parameters
    ----------
    images : array_like
        ``(n, y, x)`` (grey) or ``(n, y, x, c)`` with ``c`` in 1, 3, 4 (alpha dropped). uint8
        is divided by 255; other integer types by 255 when their values fit in 0–255, else by
        their maximum; booleans become 0 / 1; floats must already lie in [0, 1].
    channels : {3, None}, default 3
        3: grey images are repeated into RGB; None: channels are kept as they are (1 or 3).
    name : str
        What to call the input in error messages.

    Returns
    -------
    numpy.ndarray
        float32, C-contiguous.

    Raises
    ------
    InputError
        Wrong shape or dtype, NaN / infinite values, floats outside [0, 1], no images.
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise InputError(
            f"{name} must be images shaped (n, y, x) (grey) or (n, y, x, channel) with 1, 3 or "
            f"4 channels; got shape {arr.shape}. Channel-first arrays need "
            "np.moveaxis(images, 1, -1)."
        )
    if arr.shape[0] == 0:
        raise InputError(f"{name} holds no images")
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    kind = arr.dtype.kind
    if kind == "b":
        out = arr.astype(np.float32)
    elif kind in "ui":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0:
            raise InputError(f"{name} hold negative integer pixel values (min {lo})")
        scale = 255.0 if hi <= 255 else float(np.iinfo(arr.dtype).max)
        out = (arr / np.float32(scale)).astype(np.float32, copy=False)
    elif kind == "f":
        out = arr.astype(np.float32, copy=False)
        finite = np.isfinite(out)
        if not finite.all():
            raise InputError(
                f"{name} contain {int((~finite).sum())} NaN / infinite pixel values; clean them "
                "first"
            )
        lo, hi = float(out.min()), float(out.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(
                f"{name} float pixel values must lie in [0, 1]; found [{lo:.3g}, {hi:.3g}]. "
                "Pass uint8 images (0-255) or divide by 255."
            )
        out = np.clip(out, 0.0, 1.0)
    else:
        raise InputError(f"{name} must be numeric images; got dtype {arr.dtype}")
    if channels == 3 and out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    elif channels not in (3, None):
        raise ValueError(f"channels must be 3 or None, got {channels!r}")
    return np.ascontiguousarray(out, dtype=np.float32)


@lru_cache(maxsize=64)
def _aa_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)`` antialiased bilinear resampling matrix (torch / PIL scheme).

    For output pixel ``i`` the source centre is ``scale * (i + 0.5)`` with ``scale = in/out``;
    the triangle filter is widened by ``scale`` when shrinking (antialiasing) and the weights
    are normalised over the source pixels inside the image.
    """
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        j = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((j - centre + 0.5) * inv), 0.0, None)
        total = w.sum()
        if total > 0:
            weights[i, lo:hi] = w / total
    return weights


def resize_images(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize float images ``(n, y, x, channel)`` with antialiased bilinear interpolation.

    Gives the numbers of ``torch.nn.functional.interpolate(x, size, mode="bilinear",
    antialias=True, align_corners=False)`` (torchvision ``Resize`` on tensors) to float32
    rounding, without torch.

    Parameters
    ----------
    images : numpy.ndarray
        float images ``(n, y, x, channel)`` (see :func:`to_float_images`).
    size : int or (int, int)
        Output side, or (height, width).

    Returns
    -------
    numpy.ndarray
        float32 ``(n, height, width, channel)``, clipped to [0, 1]; the input itself when it
        already has that size.
    """
    height, width = (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise InputError(f"resize_images takes (n, y, x, channel) images; got shape {arr.shape}")
    if arr.shape[1:3] == (height, width):
        return arr
    wy = _aa_weights(arr.shape[1], int(height)).astype(np.float32)
    wx = _aa_weights(arr.shape[2], int(width)).astype(np.float32)
    out = np.empty((arr.shape[0], height, width, arr.shape[3]), dtype=np.float32)
    for start in range(0, arr.shape[0], 256):  # bounded temporary memory
        block = arr[start : start + 256].astype(np.float32, copy=False)
        rows = np.einsum("hy,nyxc->nhxc", wy, block, optimize=True)
        out[start : start + 256] = np.einsum("wx,nhxc->nhwc", wx, rows, optimize=True)
    return np.clip(out, 0.0, 1.0, out=out)
