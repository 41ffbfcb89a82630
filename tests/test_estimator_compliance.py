"""scikit-learn compliance of IRFA and the ridge baseline.

``parametrize_with_checks`` runs scikit-learn's whole estimator suite. The checks listed in
:data:`NEEDS_VECTOR_TARGETS` cannot apply: scikit-learn's checks generate their own targets,
1-D or ``(n, k)`` vectors, while a reconstruction estimator learns images ``(n, H, W[, 3])``
and refuses anything else with a clear error. What those checks test is tested below with
image targets instead (pickling, idempotent and reproducible fits, invariance to sample order
and subsets, parameters left untouched, ``n_features_in_``), and ``clone``,
``GridSearchCV`` and ``cross_val_score`` are run on NumPy inputs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from irfa_nwb import IRFA, RidgeReconstruction

TINY = dict(image_size=8, channels=4, width=8, max_iter=1, perceptual_weight=0,
            adversarial_weight=0, random_state=0)

#: scikit-learn checks that fit on vector targets (they cannot give images)
NEEDS_VECTOR_TARGETS = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_non_transformer_estimators_n_iter",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_regressor_data_not_an_array",
    "check_regressor_multioutput",
    "check_regressors_int",
    "check_regressors_no_decision_function",
    "check_regressors_train",
)
WHY = "fits on vector targets; y must be images (n, H, W[, 3]): tested with images below"


def expected_failed_checks(estimator) -> dict[str, str]:
    names = set(NEEDS_VECTOR_TARGETS)
    if not hasattr(estimator, "max_iter"):  # the check only fits estimators with max_iter
        names.discard("check_non_transformer_estimators_n_iter")
    return {name: WHY for name in sorted(names)}


@parametrize_with_checks([IRFA(**TINY), RidgeReconstruction()],
                         expected_failed_checks=expected_failed_checks)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------- the same, with image targets
@pytest.fixture(scope="module")
def data():
    from conftest import prototype_data

    X, images, groups, _ = prototype_data(n=48, size=8)
    return X, images, groups


def _models(groups):
    return [IRFA(unit_groups=groups, **TINY), RidgeReconstruction(alpha=1.0)]


@pytest.mark.parametrize("which", [0, 1])
def test_fit_leaves_parameters_and_returns_self(data, which):
    X, images, groups = data
    model = _models(groups)[which]
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v)
              for k, v in model.get_params().items()}
    assert model.fit(X, images) is model
    after = model.get_params()
    assert before.keys() == after.keys()
    for key, value in before.items():
        np.testing.assert_equal(after[key], value)
    assert model.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("which", [0, 1])
def test_idempotent_pickled_and_invariant(data, which):
    X, images, groups = data
    model = clone(_models(groups)[which]).fit(X, images)
    pred = model.predict(X)
    state = dict(model.__dict__)
    # predict changes nothing; a second fit gives the same model; pickling keeps it
    assert model.__dict__.keys() == state.keys()
    np.testing.assert_array_equal(clone(model).fit(X, images).predict(X), pred)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), pred)
    # sample order and subsets do not change a sample's reconstruction
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(model.predict(X[order]), pred[order], atol=1e-6)
    np.testing.assert_allclose(model.predict(X[5:9]), pred[5:9], atol=1e-6)
    # read-only and Fortran-ordered inputs
    frozen = np.asfortranarray(X.copy())
    frozen.setflags(write=False)
    np.testing.assert_allclose(model.predict(frozen), pred, atol=1e-6)


def test_grid_search_and_cross_validation_on_numpy(data):
    X, images, groups = data
    search = GridSearchCV(IRFA(unit_groups=groups, **TINY), {"lr": [1e-3, 3e-3]},
                          cv=KFold(2, shuffle=True, random_state=0))
    search.fit(X, images)
    assert search.best_params_["lr"] in (1e-3, 3e-3)
    assert search.best_estimator_.n_iter_ == 1
    scores = cross_val_score(RidgeReconstruction(), X, images, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)  # images are decodable linearly


def test_tags_describe_an_image_regressor():
    from sklearn.utils import get_tags

    for model in (IRFA(), RidgeReconstruction()):
        tags = get_tags(model)
        assert tags.estimator_type == "regressor"
        assert tags.target_tags.required and tags.target_tags.multi_output
        assert not tags.target_tags.single_output
        assert not tags.input_tags.sparse
