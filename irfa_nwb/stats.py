"""Pearson correlation, written once: row by row, and of two whole arrays (NumPy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["pearson_r", "pearson_rows", "standardized_rows"]


def standardized_rows(m: np.ndarray) -> np.ndarray:
    """Centre each row and scale it to unit norm (NaN rows where the row is constant).

    The Pearson r of two rows is the dot product of their standardized versions, so
    ``standardized_rows(A) @ standardized_rows(B).T`` is every row of A against every row of B.
    """
    m = m - m.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, m / np.where(norm > 0, norm, 1.0), np.nan)


def pearson_rows(a: Any, b: Any) -> np.ndarray:
    """Pearson r between row ``k`` of ``a`` and row ``k`` of ``b``, for every ``k``.

    Parameters
    ----------
    a, b : array_like, shape (n, ...)
        Paired samples; everything after the first axis is flattened.

    Returns
    -------
    numpy.ndarray
        float64 ``(n,)``; NaN where either row is constant.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"cannot correlate arrays of shapes {a.shape} and {b.shape}")
    n = a.shape[0] if a.ndim else 1
    return np.sum(standardized_rows(a.reshape(n, -1)) * standardized_rows(b.reshape(n, -1)), axis=1)


def pearson_r(a: Any, b: Any) -> float:
    """Pearson r between two arrays, flattened (NaN when either is constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size != b.size:
        raise InputError(f"arrays have different sizes ({a.size} and {b.size})")
    return float(pearson_rows(a[None], b[None])[0])
