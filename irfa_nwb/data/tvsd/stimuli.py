"""TVSD stimuli: THINGS paths from ``_logs/things_imgs.mat`` and the images themselves.

``things_imgs.mat`` (MATLAB v7.3) holds structs ``train_imgs`` and ``test_imgs`` whose field
``things_path`` (cell array of strings) gives each image's path inside the THINGS image
database (e.g. ``aardvark/aardvark_01b.jpg``): entry ``k`` (1-based) is the image that
``ALLMAT``'s ``train_idx`` / ``test_idx`` calls ``k``, and the rows of ``THINGS_normMUA.mat``
follow the same order. The images themselves are not part of TVSD (things-initiative.org).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, NWBLayoutError
from ..images import ImageSet, read_images
from . import _matlab

__all__ = ["read_things_paths", "tvsd_images"]


def read_things_paths(images_file: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read the THINGS paths of the training and test images from ``things_imgs.mat``.

    Parameters
    ----------
    images_file : path-like
        ``_logs/things_imgs.mat`` (MATLAB v7.3) with structs ``train_imgs`` and ``test_imgs``.

    Returns
    -------
    (train_paths, test_paths) : lists of str
        Paths relative to the THINGS image root, in stimulus order (``ALLMAT`` index - 1).
    """
    path = Path(images_file)
    if not path.is_file():
        raise FileNotFoundError(f"TVSD image list {str(path)!r} not found")
    out = []
    with _matlab.open_v73(path, "TVSD's _logs/things_imgs.mat") as f:
        for name in ("train_imgs", "test_imgs"):
            if name not in f:
                raise NWBLayoutError(
                    f"{path.name} has no {name!r} (it has {_matlab.names(f)}); "
                    "expected TVSD's _logs/things_imgs.mat"
                )
            group = f[name]
            field = next((k for k in ("things_path", "local_path") if k in group), None)
            if field is None:
                raise NWBLayoutError(
                    f"{path.name}:{name} has no things_path field (fields {sorted(group)})"
                )
            out.append([p.replace("\\", "/") for p in _matlab.strings(f, group[field])])
    return out[0], out[1]


def tvsd_images(
    *,
    n_train: int,
    n_test: int,
    images_file: str | os.PathLike | None,
    image_root: str | os.PathLike | None,
    images: Any,
    image_size: tuple[int, int] | None,
    things_paths: tuple[list[str], list[str]] | None = None,
) -> tuple[ImageSet | None, list[str] | None]:
    """The images of all ``n_train + n_test`` stimuli (train first) and their THINGS paths.

    ``images`` (array, folder, list of files; ``False``: none) wins over ``images_file`` +
    ``image_root``; ``things_paths`` is what :func:`read_things_paths` returned for
    ``images_file`` when already read. Returns ``(image_set or None, things paths or None)``.
    """
    paths: list[str] | None = None
    if images_file is not None:
        train_paths, test_paths = things_paths or read_things_paths(images_file)
        if (len(train_paths), len(test_paths)) != (n_train, n_test):
            raise InputError(
                f"things_imgs lists {len(train_paths)} train / {len(test_paths)} test images but "
                f"the MUA file has {n_train} / {n_test}"
            )
        paths = train_paths + test_paths
    image_set: ImageSet | None = None
    if images is not None and images is not False:
        image_set = read_images(images, image_size=image_size)
    elif images is None and paths is not None and image_root is not None:
        root = Path(image_root)
        files = [root / p for p in paths]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} THINGS images are missing under {str(root)!r}, e.g. {missing[:3]}"
                "; download the THINGS images (things-initiative.org) and pass their folder"
            )
        image_set = read_images(files, image_size=image_size)
        image_set = ImageSet(image_set.pixels, image_set.names, str(root))
    if image_set is not None and len(image_set) != n_train + n_test:
        raise InputError(
            f"{len(image_set)} images given but TVSD has {n_train} train + {n_test} test images"
        )
    return image_set, paths


def things_path_coord(paths: list[str] | None, image_set: ImageSet | None) -> Any:
    """``{"things_path": array}`` for ``build_dataset(extra_image_coords=...)``, or None."""
    if paths and image_set is not None:
        return {"things_path": np.array(paths)}
    return None
