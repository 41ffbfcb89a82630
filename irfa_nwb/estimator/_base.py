"""What every image-reconstruction estimator of irfa-nwb shares (IRFA and the ridge baseline).

Input checking and pairing, the unit layout learned in ``fit`` and enforced in ``predict``,
the record of which responses (kind, window, units) and which stimuli a model was fitted on,
the score (mean pixel correlation), and the scikit-learn tags.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import InputError
from ..imaging import resize_images
from ..stats import pearson_rows
from ._inputs import (
    Responses,
    as_images,
    as_responses,
    image_pairing,
    label_output,
    paired_images,
)

#: attrs of a responses DataArray that say what the numbers are; ``predict`` refuses
#: responses whose values differ from the ones the model was fitted on
RESPONSE_ATTRS: tuple[str, ...] = (
    "responses_kind", "value_units", "window", "windows", "bins", "latency",
)


def _attr_value(value: Any) -> Any:
    if isinstance(value, np.ndarray | list | tuple):
        return [_attr_value(v) for v in np.asarray(value).tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


class ReconstructionEstimator(RegressorMixin, BaseEstimator):
    """Base class: responses in, images out, scikit-learn contract.

    Subclasses implement ``fit`` (calling :meth:`_fit_inputs` first) and ``_predict_rows``
    (float32 ``(n, H, W, 3)`` from a float32 ``(n, n_units)`` matrix).
    """

    # ------------------------------------------------------------------ inputs
    def _fit_inputs(
        self, X: Any, y: Any, *, channels_first: bool = False
    ) -> tuple[Responses, np.ndarray, np.ndarray]:
        """Checked responses, the distinct images and each row's image index; records the
        fitted layout. Images are float32 ``(n, H, W, 3)``, or ``(n, 3, H, W)`` with
        ``channels_first``, resized to the estimator's ``image_size`` when it has one."""
        if y is None:
            raise InputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "pass the images that evoked the responses"
            )
        resp = as_responses(X)
        if len(resp.values) < 2:
            raise InputError(
                f"need at least 2 samples to fit; got n_samples = {len(resp.values)}"
            )
        size = getattr(self, "image_size", None)  # targets resized while converted
        images, image_index = image_pairing(resp, y, size=None if size is None else int(size),
                                            channels_first=channels_first)
        self.n_features_in_ = int(resp.values.shape[1])
        self.unit_ids_ = resp.unit_ids
        stim = resp.present_stimulus_ids
        self.training_stimulus_ids_ = None if stim is None else np.unique(stim)
        attrs = getattr(X, "attrs", {}) or {}
        self.response_attrs_ = {
            k: _attr_value(attrs[k]) for k in RESPONSE_ATTRS if k in attrs
        }
        return resp, images, image_index

    def _predict_inputs(self, X: Any, *, check_responses: bool = True) -> Responses:
        """Checked responses with units in the fitted order."""
        self._check_fitted()
        resp = as_responses(X)
        fitted_ids = getattr(self, "unit_ids_", None)
        if resp.unit_ids is not None and fitted_ids is not None:
            if not np.array_equal(resp.unit_ids, fitted_ids):
                position = {v: i for i, v in enumerate(resp.unit_ids.tolist())}
                missing = [u for u in fitted_ids.tolist() if u not in position]
                extra = sorted(set(position) - set(fitted_ids.tolist()), key=str)
                if missing or extra:
                    what = (
                        f"lacks {len(missing)} of the fitted units (unit_id {missing[:5]})"
                        if missing else
                        f"has {len(extra)} units the model was not fitted on (unit_id "
                        f"{extra[:5]})"
                    )
                    raise InputError(
                        f"X {what}; predict needs exactly the units of fit (select them with "
                        "X.sel(unit=X.unit_id.isin(model.unit_ids_)))"
                    )
                order = np.array([position[u] for u in fitted_ids.tolist()])
                resp.values = resp.values[:, order]
                for name in ("groups", "areas"):
                    value = getattr(resp, name)
                    if value is not None:
                        setattr(resp, name, value[order])
                resp.unit_ids = resp.unit_ids[order]
        if resp.values.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {resp.values.shape[1]} units but the model was fitted on "
                f"{self.n_features_in_}; predict needs the same unit layout as fit"
            )
        if check_responses:
            self._check_response_attrs(getattr(X, "attrs", {}) or {})
        return resp

    def _check_response_attrs(self, attrs: dict) -> None:
        fitted = getattr(self, "response_attrs_", None) or {}
        clashes = []
        for key, value in fitted.items():
            if key in attrs and _attr_value(attrs[key]) != value:
                clashes.append(f"{key}: fitted on {value!r}, got {_attr_value(attrs[key])!r}")
        if clashes:
            raise InputError(
                "X are not the kind of responses the model was fitted on ("
                + "; ".join(clashes)
                + "). Load them as in fit (same response kind, window and units), or pass "
                "check_responses=False if you mean it"
            )

    # ---------------------------------------------------------------- outputs
    def predict(self, X: Any, *, check_responses: bool = True) -> Any:
        """Reconstruct images from responses.

        Parameters
        ----------
        X : array-like or xarray.DataArray
            Responses with the units of ``fit`` (reordered by ``unit_id`` when labelled).
        check_responses : bool, default True
            Refuse responses whose ``attrs`` say they are of another kind, window or unit
            than those the model was fitted on (``responses_kind``, ``value_units``,
            ``window``, ``windows``, ``bins``, ``latency``).

        Returns
        -------
        numpy.ndarray or xarray.DataArray
            float32 ``(..., H, W, 3)`` in [0, 1]. A DataArray input gives a DataArray with its
            sample dims and coords followed by ``("y", "x", "channel")``; samples that are
            missing repeats (all-NaN rows) give NaN images.
        """
        resp = self._predict_inputs(X, check_responses=check_responses)
        images = self._predict_rows(resp.values)
        return label_output(images, resp, ("y", "x", "channel"), {"channel": ["R", "G", "B"]})

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean over samples of the Pearson r between reconstruction and image pixels.

        The images are resized to the reconstructions' size first (antialiased bilinear).
        """
        if sample_weight is not None:
            raise InputError("sample_weight is not supported")
        resp = self._predict_inputs(X)
        pred = self._predict_rows(resp.values)
        target = paired_images(resp, y)
        target = resize_images(target, pred.shape[1:3])
        return float(np.nanmean(np.nan_to_num(pearson_rows(pred, target), nan=0.0)))

    def _predict_rows(self, values: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        tags.regressor_tags.poor_score = True
        return tags

    # images helper for subclasses
    @staticmethod
    def _images(y: Any) -> np.ndarray:
        return as_images(y)[0]


__all__ = ["RESPONSE_ATTRS", "ReconstructionEstimator"]
