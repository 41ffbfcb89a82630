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

__all__ = ["RidgeReconstruction"]

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
        from sklearn.linear_model import Ridge, RidgeCV

        size = self.image_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int | np.integer)
                                 or size < 1):
            raise InputError(f"image_size must be a positive int or None; got {size!r}")
        resp, images, image_index = self._fit_inputs(X, y)
        images = images[image_index]
        values = resp.values.astype(np.float64)
        self.mean_ = values.mean(axis=0)
        scale = values.std(axis=0) if self.standardize else np.ones(values.shape[1])
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (values - self.mean_) / self.scale_
        target = images.reshape(len(images), -1).astype(np.float64)
        if self.alpha is None:
            alphas = np.asarray(list(self.alphas), dtype=np.float64)
            if alphas.size == 0 or np.any(alphas <= 0):
                raise InputError("alphas must be positive numbers")
            model = RidgeCV(alphas=alphas).fit(Z, target)
            self.alpha_ = float(model.alpha_)
        else:
            if not self.alpha >= 0:
                raise InputError(f"alpha must be >= 0, got {self.alpha}")
            model = Ridge(alpha=float(self.alpha)).fit(Z, target)
            self.alpha_ = float(self.alpha)
        self.coef_ = np.asarray(model.coef_)
        self.intercept_ = np.asarray(model.intercept_)
        self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        return self

    def _check_fitted(self) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "coef_", msg="this RidgeReconstruction is not fitted yet; call "
                        "fit(X, y)")

    def _predict_rows(self, values: np.ndarray) -> np.ndarray:
        Z = (values.astype(np.float64) - self.mean_) / self.scale_
        pred = Z @ self.coef_.T + self.intercept_
        return np.clip(pred, 0.0, 1.0).astype(np.float32).reshape(len(Z), *self.image_shape_)
