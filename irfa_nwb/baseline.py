"""Ridge-regression reconstruction baseline (scikit-learn), with the conventions of ``IRFA``.

A linear map from (standardised) responses to pixels: the usual baseline against which image
reconstruction from neural data is judged. Same inputs and outputs as
:class:`irfa_nwb.IRFA`: ``X`` is ``(n_samples, n_units)`` (NumPy, or an ``xarray.DataArray`` with
a ``"unit"`` dim and one sample dim); ``y`` is ``(n, H, W, 3)`` (or ``(n, H, W)`` grey) uint8
0-255 or float in [0, 1]; :meth:`RidgeReconstruction.predict` returns float32 images in
[0, 1], as a DataArray with dims ``(<sample dim>, "y", "x", "channel")`` when ``X`` is one.
No torch, no pynwb.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from .errors import InputError
from .estimator._inputs import as_images, as_responses

__all__ = ["RidgeReconstruction"]

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-1, 5, 13))


def _responses(X: Any) -> tuple[np.ndarray, str | None, dict[str, Any]]:
    """Responses as float64 ``(n, units)``, the sample dim name and its coords (xarray)."""
    resp = as_responses(X)
    return resp.values.astype(np.float64), resp.sample_dim, resp.sample_coords


def _images(y: Any) -> np.ndarray:
    """Images as float64 ``(n, H, W, 3)`` in [0, 1]."""
    return as_images(y)[0].astype(np.float64)


class RidgeReconstruction(RegressorMixin, BaseEstimator):
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

    Attributes
    ----------
    alpha_ : float
        The penalty used.
    image_shape_ : tuple of int
        ``(H, W, 3)`` of the training images (and of the predictions).
    n_features_in_ : int
        Number of units.
    coef_ : numpy.ndarray
        ``(H * W * 3, n_units)`` weights on the standardised responses.

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
    ) -> None:
        self.alpha = alpha
        self.alphas = alphas
        self.standardize = standardize

    def fit(self, X: Any, y: Any) -> RidgeReconstruction:
        """Fit the linear map from responses ``X`` to images ``y``.

        Parameters
        ----------
        X : array-like or xarray.DataArray, shape (n_samples, n_units)
            Responses.
        y : array-like or xarray.DataArray, shape (n_samples, H, W, 3) or (n_samples, H, W)
            Images, uint8 (0-255) or float in [0, 1].

        Returns
        -------
        RidgeReconstruction
            ``self``.
        """
        from sklearn.linear_model import Ridge, RidgeCV

        values, _, _ = _responses(X)
        images = _images(y)
        if images.shape[0] != values.shape[0]:
            raise InputError(f"X has {values.shape[0]} samples but y has {images.shape[0]} images")
        self.mean_ = values.mean(axis=0)
        scale = values.std(axis=0) if self.standardize else np.ones(values.shape[1])
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (values - self.mean_) / self.scale_
        target = images.reshape(len(images), -1)
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
        self.n_features_in_ = int(values.shape[1])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this RidgeReconstruction is not fitted yet; call fit(X, y)")

    def predict(self, X: Any) -> Any:
        """Reconstruct images from responses.

        Parameters
        ----------
        X : array-like or xarray.DataArray, shape (n_samples, n_units)
            Responses (same units, same order as in ``fit``).

        Returns
        -------
        numpy.ndarray or xarray.DataArray
            ``(n_samples, H, W, 3)`` float32 in [0, 1]; a DataArray input gives a DataArray
            with dims ``(<sample dim>, "y", "x", "channel")``, the sample coords carried
            through and ``channel`` coord ``["R", "G", "B"]``.
        """
        self._check_fitted()
        values, sample_dim, coords = _responses(X)
        if values.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {values.shape[1]} units but the model was fitted on {self.n_features_in_}"
            )
        Z = (values - self.mean_) / self.scale_
        pred = Z @ self.coef_.T + self.intercept_
        pred = np.clip(pred, 0.0, 1.0).astype(np.float32).reshape(len(Z), *self.image_shape_)
        if sample_dim is None:
            return pred
        import xarray as xr

        return xr.DataArray(
            pred,
            dims=(sample_dim, "y", "x", "channel"),
            coords={**coords, "channel": ["R", "G", "B"]},
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean over images of the Pearson correlation between reconstruction and image pixels.

        Parameters
        ----------
        X : array-like or xarray.DataArray
            Responses.
        y : array-like or xarray.DataArray
            True images.
        sample_weight : None
            Not supported (scikit-learn signature).

        Returns
        -------
        float
        """
        if sample_weight is not None:
            raise InputError("sample_weight is not supported")
        pred = np.asarray(self.predict(X), dtype=np.float64)
        target = _images(y)
        if target.shape != pred.shape:
            raise InputError(f"y has shape {target.shape}, predictions {pred.shape}")
        a = pred.reshape(len(pred), -1)
        b = target.reshape(len(target), -1)
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        denom = np.sqrt((a * a).sum(1) * (b * b).sum(1))
        r = np.divide((a * b).sum(1), denom, out=np.zeros(len(a)), where=denom > 0)
        return float(r.mean())
