"""Stimulus images: from NWB containers, arrays, folders or lists of files.

Images are returned as a ``(stimulus, y, x, channel)`` array (uint8, or float32 in [0, 1])
together with their ids: int64 positions, or str names when the source names them (file stems,
names of ``Image`` objects in an ``Images`` container, ``control_description`` of Allen
templates).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, NWBLayoutError
from ..imaging import resize_images, to_float_images

__all__ = ["ImageSet", "images_from_nwb_container", "read_images"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


@dataclass
class ImageSet:
    """Images ``(n, y, x, channel)`` with their names (``None`` when unnamed) and origin."""

    pixels: np.ndarray
    names: np.ndarray | None
    origin: str

    def __len__(self) -> int:
        return int(self.pixels.shape[0])


def _as_nyxc(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise InputError(
            f"{what}: expected images shaped (n, y, x) or (n, y, x, channel) with 1, 3 or 4 "
            f"channels, got shape {arr.shape}"
        )
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    return _normalise(arr, what)


def _normalise(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind in "ui":
        info = np.iinfo(arr.dtype)
        if arr.size and arr.min() >= 0 and arr.max() <= 255:
            return arr.astype(np.uint8)
        return (arr.astype(np.float64) / info.max).clip(0, 1).astype(np.float32)
    if arr.dtype.kind == "b":
        return arr.astype(np.float32)
    if arr.dtype.kind != "f":
        raise InputError(f"{what}: images must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise InputError(
            f"{what}: float images must lie in [0, 1], found values in "
            f"[{finite.min():.3g}, {finite.max():.3g}]; pass uint8 images or divide by 255"
        )
    return np.nan_to_num(arr, nan=0.5)


def _stack(
    frames: Sequence[np.ndarray], what: str, image_size: tuple[int, int] | None
) -> np.ndarray:
    out = []
    for f in frames:
        f = np.asarray(f)
        if f.ndim == 2:
            f = f[..., None]
        if f.ndim != 3:
            raise InputError(f"{what}: an image has shape {f.shape}; expected (y, x[, channel])")
        if f.shape[-1] == 4:
            f = f[..., :3]
        out.append(f)
    n_channels = {f.shape[-1] for f in out}
    if len(n_channels) > 1:
        out = [np.repeat(f, 3, axis=-1) if f.shape[-1] == 1 else f for f in out]
    if image_size is not None:
        out = [_resize(f, image_size, what) for f in out]
    shapes = {f.shape for f in out}
    if len(shapes) > 1:
        raise InputError(
            f"{what}: images have different shapes {sorted(shapes)[:5]}; pass "
            "image_size=(height, width) to resize them all"
        )
    if not out:
        raise InputError(f"{what}: no images")
    return _normalise(np.stack(out), what)


def _resize(img: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    """One ``(y, x, channel)`` image at ``size``, resized as the estimator resizes its targets."""
    if tuple(img.shape[:2]) == tuple(size):
        return img
    return resize_images(to_float_images(img[None], channels=None, name=what), size)[0]


def _read_file(path: Path) -> np.ndarray:
    from skimage.io import imread

    try:
        return np.asarray(imread(path))
    except Exception as err:  # the image plugins raise many types
        raise InputError(f"cannot read image file {str(path)!r}: {err}") from err


def _natural_key(path: Path) -> list[Any]:
    """Sort key with numbers compared as numbers: ``2.tiff`` before ``10.tiff``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def read_images(images: Any, *, image_size: tuple[int, int] | None = None) -> ImageSet:
    """Read user-supplied images.

    Parameters
    ----------
    images : array, xarray.DataArray, folder, list of paths or mapping
        - array ``(n, y, x)`` or ``(n, y, x, channel)``: ids are positions 0..n-1;
        - ``xarray.DataArray`` with a ``stimulus_id`` (or ``stimulus``) first dim: ids from its
          ``stimulus_id`` (or ``stimulus``) coordinate when present;
        - a folder: its image files (``.png .jpg .tif ...``) sorted by name, numbers in names
          compared as numbers (``2.tiff`` before ``10.tiff``, as AllenSDK names the natural
          scenes); ids are positions in that order and names are the file stems;
        - a list of file paths: in the given order, names are the stems;
        - a mapping ``name -> array``.
    image_size : (int, int), optional
        Resize every image to (height, width); the result is float32 in [0, 1].

    Returns
    -------
    ImageSet
    """
    import xarray as xr

    if isinstance(images, xr.DataArray):
        dims = images.dims
        if dims[0] not in ("stimulus_id", "stimulus", "image", "frame"):
            raise InputError(
                f"images DataArray: first dim should be 'stimulus_id', got {dims}"
            )
        coord = next((c for c in ("stimulus_id", dims[0]) if c in images.coords), None)
        names = None
        if coord is not None:
            values = np.asarray(images[coord].values)
            names = values.astype(str) if values.dtype.kind in "OUS" else None
            if names is None and not np.array_equal(values, np.arange(len(values))):
                raise InputError(
                    "images DataArray: integer stimulus ids must be 0..n-1 in order; "
                    "reorder with .sortby or pass names"
                )
        arr = np.asarray(images.values)
        if image_size is not None:
            return ImageSet(_stack(list(arr), "images", image_size), names, "DataArray")
        return ImageSet(_as_nyxc(arr, "images"), names, "DataArray")
    if isinstance(images, np.ndarray):
        if image_size is not None:
            return ImageSet(_stack(list(images), "images", image_size), None, "array")
        return ImageSet(_as_nyxc(images, "images array"), None, "array")
    if isinstance(images, Mapping):
        names = np.array([str(k) for k in images])
        return ImageSet(_stack(list(images.values()), "images", image_size), names, "mapping")
    if isinstance(images, str | os.PathLike):
        folder = Path(images).expanduser()
        if not folder.exists():
            raise FileNotFoundError(f"images folder {str(folder)!r} does not exist")
        if not folder.is_dir():
            files = [folder]
        else:
            files = sorted(
                (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                key=_natural_key,
            )
            if not files:
                raise InputError(
                    f"folder {str(folder)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})"
                )
        pixels = _stack([_read_file(p) for p in files], f"images in {folder}", image_size)
        return ImageSet(pixels, np.array([p.stem for p in files]), str(folder))
    if (
        isinstance(images, Sequence)
        and images
        and all(isinstance(p, str | os.PathLike) for p in images)
    ):
        files = [Path(p).expanduser() for p in images]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"image files not found: {missing[:5]}")
        pixels = _stack([_read_file(p) for p in files], "image files", image_size)
        return ImageSet(pixels, np.array([p.stem for p in files]), "list of files")
    raise InputError(
        "images must be an array (n, y, x[, c]), an xarray.DataArray, a folder, a list of image "
        f"paths or a mapping name -> array; got {type(images).__name__}"
    )


def images_from_nwb_container(
    container: Any, *, image_size: tuple[int, int] | None = None
) -> ImageSet:
    """Read the images of an NWB ``Images`` container or an image series with embedded frames.

    ``Images``: in ``order_of_images`` order when present (else by name), named by the
    ``Image`` names. Image series (e.g. Allen stimulus templates): frames along the first
    axis; named by ``control_description`` when it has one name per frame.
    """
    from pynwb.base import Images
    from pynwb.image import ImageSeries

    if isinstance(container, Images):
        order = getattr(container, "order_of_images", None)
        if order is not None:
            imgs = list(order.data[:])
        else:
            imgs = [container.images[k] for k in sorted(container.images)]
        names = np.array([im.name for im in imgs])
        frames = [np.asarray(im.data[()]) for im in imgs]
        pixels = _stack(frames, f"Images {container.name!r}", image_size)
        return ImageSet(pixels, names, f"stimulus_template/{container.name}")
    if isinstance(container, ImageSeries) or hasattr(container, "data"):
        ext = getattr(container, "external_file", None)
        if ext is not None and (
            getattr(container, "format", None) == "external"
            or getattr(container, "data", None) is None
            or container.data.shape[0] == 0
        ):
            files = [str(f) for f in ext[:3]]
            raise NWBLayoutError(
                f"{type(container).__name__} {container.name!r} stores its frames in external "
                f"files "
                f"({files}...), which irfa-nwb cannot read; pass the frames with images="
            )
        data = np.asarray(container.data[:])
        names = None
        desc = getattr(container, "control_description", None)
        if desc is not None and len(desc) == data.shape[0]:
            names = np.array([d.decode() if isinstance(d, bytes) else str(d) for d in desc[:]])
        if image_size is not None:
            pixels = _stack(list(data), f"series {container.name!r}", image_size)
        else:
            pixels = _as_nyxc(data, f"series {container.name!r}")
        return ImageSet(pixels, names, f"{container.name}")
    raise NWBLayoutError(f"{type(container).__name__} {container.name!r} holds no images")
