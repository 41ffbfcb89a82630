"""Electrode arrays of the virtual cortex and the receptive-field (RF) geometry of their units.

Units are grouped in arrays (electrode groups, ``"<area>_a<k>"``). V1 and V4 array centres sit
on a ring around the image centre (V1 further out), IT arrays near the centre. The RF centres
of an array's units scatter around the array's centre with exactly zero mean, so an array's
true RF centre is the mean of its units' ``rf_x`` / ``rf_y``. Coordinates are fractions of the
image width (x, from the left) and height (y, from the top).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["AREAS", "DEFAULT_ARRAYS", "GEOMETRY", "ArrayLayout", "array_centres", "make_layout"]

AREAS: tuple[str, ...] = ("V1", "V4", "IT")

#: Default arrays per area (kept small so the demo fits a 2-core laptop).
DEFAULT_ARRAYS: dict[str, int] = {"V1": 4, "V4": 2, "IT": 2}

#: Per-area geometry, image fractions: (ring radius of array centres, SD of the units' scatter
#: around the array centre, range of RF Gaussian sigma).
GEOMETRY: dict[str, tuple[float, float, tuple[float, float]]] = {
    "V1": (0.22, 0.025, (0.03, 0.05)),
    "V4": (0.15, 0.04, (0.07, 0.11)),
    "IT": (0.0, 0.03, (0.18, 0.28)),
}


@dataclass(frozen=True)
class ArrayLayout:
    """Where the units are: per-unit area, array and RF, per-array true RF centre.

    Attributes
    ----------
    area, electrode_group : numpy.ndarray of str
        Per unit, in area order V1, V4, IT.
    rf_x, rf_y, rf_sigma : numpy.ndarray of float
        RF centre and Gaussian radius per unit (image fractions).
    array_names : list of str
        Array names in unit order.
    array_rf_x, array_rf_y : numpy.ndarray of float
        True RF centre of each array (the mean of its units' centres).
    """

    area: np.ndarray
    electrode_group: np.ndarray
    rf_x: np.ndarray
    rf_y: np.ndarray
    rf_sigma: np.ndarray
    array_names: list[str]
    array_rf_x: np.ndarray
    array_rf_y: np.ndarray

    def units_of(self, area: str) -> np.ndarray:
        """Indices of the units of ``area``."""
        return np.flatnonzero(self.area == area)

    @property
    def array_index(self) -> np.ndarray:
        """Per unit, the position of its array in :attr:`array_names`."""
        lookup = {name: k for k, name in enumerate(self.array_names)}
        return np.array([lookup[g] for g in self.electrode_group], dtype=np.int64)


def array_centres(area: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Known per-array RF centres ``(n, 2)`` (x, y) spread over the visual field."""
    radius = GEOMETRY[area][0]
    if area == "IT":
        return 0.5 + np.clip(rng.normal(0.0, 0.04, size=(n, 2)), -0.08, 0.08)
    start = rng.uniform(0, 2 * np.pi)
    ang = start + 2 * np.pi * np.arange(n) / max(n, 1)
    return 0.5 + radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def make_layout(
    arrays: Mapping[str, int], units_per_array: int, image_size: int, rng: np.random.Generator
) -> ArrayLayout:
    """Place ``units_per_array`` units on each array of ``arrays`` (areas in V1, V4, IT order).

    RF radii are at least one pixel at small image sizes.
    """
    m = int(units_per_array)
    area, group, rfx, rfy, rfs = [], [], [], [], []
    names, acx, acy = [], [], []
    for a in AREAS:
        n_arr = int(arrays.get(a, 0))
        if n_arr == 0:
            continue
        _, spread, (smin, smax) = GEOMETRY[a]
        for k, (cx, cy) in enumerate(array_centres(a, n_arr, rng)):
            off = rng.normal(0.0, spread, size=(m, 2))
            off -= off.mean(axis=0)  # the array centre is exactly the units' mean
            names.append(f"{a}_a{k + 1}")
            acx.append(cx)
            acy.append(cy)
            area += [a] * m
            group += [names[-1]] * m
            rfx.append(cx + off[:, 0])
            rfy.append(cy + off[:, 1])
            rfs.append(rng.uniform(smin, smax, size=m))
    return ArrayLayout(
        area=np.array(area),
        electrode_group=np.array(group),
        rf_x=np.concatenate(rfx),
        rf_y=np.concatenate(rfy),
        rf_sigma=np.maximum(np.concatenate(rfs), 1.0 / image_size),
        array_names=names,
        array_rf_x=np.array(acx),
        array_rf_y=np.array(acy),
    )
