"""Natural image patches cut from the photographs shipped inside scikit-image.

Only photographs that scikit-image keeps inside its own package are used (no download, no
network). Each photograph is resampled once per ``image_size`` into a small pyramid of scales
(cached for the process); a patch is then a plain ``image_size`` x ``image_size`` crop of one
pyramid level, optionally mirrored, so cutting thousands of patches costs almost nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import InputError

#: Photographs used by default: natural scenes, objects, textures (grey ones become RGB).
PHOTOS: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "immunohistochemistry",
    "camera",
    "coins",
    "moon",
    "grass",
    "gravel",
    "brick",
)

#: Fraction of a photograph's shorter side that one patch covers, one entry per pyramid level.
PATCH_FRACTIONS: tuple[float, ...] = (0.15, 0.22, 0.32, 0.45, 0.65, 0.9)


def _load_photo(name: str) -> np.ndarray:
    """Return one bundled photograph as float32 RGB in [0, 1], shape (H, W, 3)."""
    import skimage.data

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = skimage.data.stereo_motorcycle()
        img = left if name == "motorcycle_left" else right
    else:
        loader = getattr(skimage.data, name, None)
        if loader is None or name.startswith("_"):
            raise InputError(f"scikit-image has no bundled photograph named {name!r}")
        img = loader()
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    img = img.astype(np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


@lru_cache(maxsize=8)
def _pyramid(image_size: int, photos: tuple[str, ...]) -> tuple[tuple[np.ndarray, ...], ...]:
    """Resampled copies of every photograph, one per entry of :data:`PATCH_FRACTIONS`.

    Level ``k`` of a photograph is scaled so that ``image_size`` pixels span
    ``PATCH_FRACTIONS[k]`` of its shorter side. Levels are built from the previous (larger)
    one, which keeps the anti-aliasing cheap. Returned as uint8 to keep the cache small.
    """
    from skimage.transform import rescale

    out = []
    for name in photos:
        img = _load_photo(name)
        short = min(img.shape[:2])
        levels: list[np.ndarray] = []
        current, current_scale = img, 1.0
        for frac in PATCH_FRACTIONS:  # ascending fraction = descending scale
            scale = image_size / (frac * short)
            ratio = scale / current_scale
            current = rescale(
                current, ratio, order=1, anti_aliasing=ratio < 1, channel_axis=-1
            ).astype(np.float32)
            current_scale = scale
            if min(current.shape[:2]) < image_size:  # rounding at the smallest level
                pad_y = max(0, image_size - current.shape[0])
                pad_x = max(0, image_size - current.shape[1])
                current = np.pad(current, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
            levels.append(np.clip(np.rint(current * 255.0), 0, 255).astype(np.uint8))
        out.append(tuple(levels))
    return tuple(out)


def as_generator(
    random_state: int | np.random.Generator | None, *, rng: Any = None, seed: Any = None
) -> np.random.Generator:
    """A NumPy generator from ``random_state`` (or the deprecated ``rng`` / ``seed``)."""
    if rng is not None or seed is not None:
        warnings.warn("rng= and seed= are deprecated; pass random_state= (a seed or a "
                      "numpy Generator)", FutureWarning, stacklevel=3)
        random_state = rng if rng is not None else seed
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def natural_patches(
    n: int,
    image_size: int = 64,
    *,
    random_state: int | np.random.Generator | None = 0,
    photos: Sequence[str] | None = None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Cut ``n`` RGB patches out of the photographs bundled with scikit-image.

    Each patch picks a photograph, a scale (a patch spans 15-90 % of the photograph's shorter
    side), a position and a left-right mirror at random.

    Parameters
    ----------
    n : int
        Number of patches.
    image_size : int, default 64
        Side of the square patches in pixels.
    random_state : int, numpy.random.Generator or None, default 0
        Seed, or the generator to draw from.
    photos : sequence of str, optional
        Names of ``skimage.data`` photographs (default :data:`PHOTOS`).
    rng, seed : deprecated
        Old names of ``random_state``.

    Returns
    -------
    numpy.ndarray
        ``(n, image_size, image_size, 3)`` uint8 array.
    """
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    if image_size < 8:
        raise InputError(f"image_size must be >= 8 pixels, got {image_size}")
    rng = as_generator(random_state, rng=rng, seed=seed)
    names = tuple(PHOTOS if photos is None else photos)
    if not names:
        raise InputError("photos must name at least one photograph")
    pyramid = _pyramid(int(image_size), names)
    which = rng.integers(0, len(names), size=n)
    level = rng.integers(0, len(PATCH_FRACTIONS), size=n)
    u = rng.random((n, 2))
    flip = rng.random(n) < 0.5
    out = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    for i in range(n):
        src = pyramid[which[i]][level[i]]
        y0 = int(u[i, 0] * (src.shape[0] - image_size + 1))
        x0 = int(u[i, 1] * (src.shape[1] - image_size + 1))
        patch = src[y0 : y0 + image_size, x0 : x0 + image_size]
        out[i] = patch[:, ::-1] if flip[i] else patch
    return out
