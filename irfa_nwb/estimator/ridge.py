"""Ridge-regression reconstruction baseline (scikit-learn), with the conventions of ``IRFA``.

A linear map from (standardised) responses to pixels: the usual baseline against which image
reconstruction from neural data is judged. Same inputs and outputs as
:class:`irfa_nwb.IRFA` (see :mod:`irfa_nwb.estimator._inputs`): ``fit(ds["responses"],
ds["images"])`` works on a loaded Dataset; :meth:`RidgeReconstruction.predict` returns float32
images in [0, 1], labelled like ``X``. No torch, no pynwb.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ._base import ReconstructionEstimator

__all__ = ["RidgeReconstruction", "apply_ridge_map", "out_of_fold_ridge", "ridge_map"]

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-1, 5, 13))


class RidgeReconstruction(ReconstructionEstimator):
    """Reconstruct images from responses with ridge regression (one linear map to all pixels).

    Responses are standardised per unit (statistics of the training set), pixels centred, and
    a multi-output :class:`sklearn.linear_model.Ridge` maps one to the other. With ``alpha=None``
    the penalty is chosen among ``alphas`` by efficient leave-one-out cross-validation
    (:class:`sklearn.linear_model.RidgeCV`), one penalty shared by all pixels.

    Parameters
    ----------
    alpha : float or None, default None
        Ridge penalty; ``None`` chooses it from ``alphas``.
    alphas : sequence of float, default ``logspace(-1, 5, 13)``
        Candidate penalties when ``alpha`` is ``None``.
    standardize : bool, default True
        z-score every unit before the regression.
    image_size : int or None, default None
        Resize the target images to this side first (as IRFA's ``image_size``); None keeps
        the training images' size.

    Attributes
    ----------
    alpha_ : float
        The penalty used.
    image_shape_ : tuple of int
        ``(H, W, 3)`` of the (resized) training images, and of the predictions.
    n_features_in_ : int
        Number of units.
    coef_ : numpy.ndarray
        ``(H * W * 3, n_units)`` weights on the standardised responses.
    training_stimulus_ids_, unit_ids_, response_attrs_ :
        As for :class:`irfa_nwb.IRFA`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random((50, 8, 8, 3))
    >>> X = y.reshape(50, -1) @ rng.normal(size=(192, 20))
    >>> model = RidgeReconstruction().fit(X, y)
    >>> model.predict(X).shape
    (50, 8, 8, 3)
    """

    def __init__(
        self,
        alpha: float | None = None,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        standardize: bool = True,
        image_size: int | None = None,
    ) -> None:
        self.alpha = alpha
        self.alphas = alphas
        self.standardize = standardize
        self.image_size = image_size

    def fit(self, X: Any, y: Any) -> RidgeReconstruction:
        """Fit the linear map from responses ``X`` to images ``y``.

        Parameters
        ----------
        X : array-like or xarray.DataArray
            Responses (see :meth:`irfa_nwb.IRFA.fit`).
        y : array-like or xarray.DataArray
            Images, uint8 (0-255) or float in [0, 1], row-aligned or by ``stimulus_id``.

        Returns
        -------
        RidgeReconstruction
            ``self``.
        """
        size = self.image_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int | np.integer)
                                 or size < 1):
            raise InputError(f"image_size must be a positive int or None; got {size!r}")
        resp, images, image_index = self._fit_inputs(X, y)
        images = images[image_index]
        fitted = ridge_map(resp.values, images.reshape(len(images), -1), alpha=self.alpha,
                           alphas=self.alphas, standardize=self.standardize)
        self.mean_, self.scale_, self.coef_, self.intercept_, self.alpha_ = fitted
        self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        return self

    def _check_fitted(self) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "coef_", msg="this RidgeReconstruction is not fitted yet; call "
                        "fit(X, y)")

    def _predict_rows(self, values: np.ndarray) -> np.ndarray:
        pred = apply_ridge_map(values, self.mean_, self.scale_, self.coef_, self.intercept_)
        return np.clip(pred, 0.0, 1.0).astype(np.float32).reshape(len(pred), *self.image_shape_)


def ridge_map(
    X: np.ndarray,
    targets: np.ndarray,
    *,
    alpha: float | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    standardize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Fit one ridge map from responses to flattened targets.

    Parameters
    ----------
    X : ``(n, n_units)``
    targets : ``(n, n_outputs)``
    alpha : float or None
        Penalty; None chooses it among ``alphas`` by efficient leave-one-out cross-validation
        (:class:`sklearn.linear_model.RidgeCV`, one penalty for all outputs).
    alphas : sequence of float
    standardize : bool
        z-score every unit first.

    Returns
    -------
    mean, scale : ``(n_units,)``
        The standardisation (``scale`` 1 where a unit is constant or ``standardize`` is off).
    coef : ``(n_outputs, n_units)``
        Weights on the standardised responses.
    intercept : ``(n_outputs,)``
    alpha : float
        The penalty used.
    """
    from sklearn.linear_model import Ridge, RidgeCV

    values = np.asarray(X, dtype=np.float64)
    target = np.asarray(targets, dtype=np.float64)
    mean = values.mean(axis=0)
    scale = values.std(axis=0) if standardize else np.ones(values.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    Z = (values - mean) / scale
    if alpha is None:
        grid = np.asarray(list(alphas), dtype=np.float64)
        if grid.size == 0 or np.any(grid <= 0):
            raise InputError("alphas must be positive numbers")
        model = RidgeCV(alphas=grid).fit(Z, target)
        used = float(model.alpha_)
    else:
        if not alpha >= 0:
            raise InputError(f"alpha must be >= 0, got {alpha}")
        model = Ridge(alpha=float(alpha)).fit(Z, target)
        used = float(alpha)
    return mean, scale, np.asarray(model.coef_), np.asarray(model.intercept_), used


def apply_ridge_map(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                    intercept: np.ndarray) -> np.ndarray:
    """Predictions ``(n, n_outputs)`` of a :func:`ridge_map` fit (not clipped)."""
    Z = (np.asarray(X, dtype=np.float64) - mean) / scale
    return Z @ coef.T + intercept


def out_of_fold_ridge(
    X: np.ndarray,
    targets: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_splits: int = 5,
    alpha: float | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]]:
    """Ridge predictions of every row from a map that did not see it, and the map on all rows.

    The penalty (unless ``alpha`` is given) is chosen once on all rows (leave-one-out, so
    each row has a small say in it), then ``n_splits`` folds (whole
    ``groups`` together, e.g. all repeats of a stimulus) are each predicted by a ridge map fitted
    on the others with that penalty. Out-of-fold predictions carry the errors a new stimulus
    would get, so a network trained to refine them learns to correct those errors rather than
    to trust an in-sample fit.

    Returns
    -------
    predictions : ``(n, n_outputs)``
    full : tuple
        :func:`ridge_map` output on all rows (for new responses).
    """
    from sklearn.model_selection import GroupKFold

    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    groups = np.arange(n) if groups is None else np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise InputError("an out-of-fold ridge needs at least two distinct stimuli")
    full = ridge_map(X, targets, alpha=alpha, alphas=alphas)
    alpha = full[4]
    out = np.empty((n, np.asarray(targets).shape[1]), dtype=np.float64)
    for fit_rows, held in GroupKFold(n_splits=min(n_splits, n_groups)).split(X, groups=groups):
        fold = ridge_map(X[fit_rows], targets[fit_rows], alpha=alpha)
        out[held] = apply_ridge_map(X[held], *fold[:4])
    return out, full
