"""irfa_nwb.compare: same splits over seeds, paired bootstrap intervals with known answers,
identification recomputed inside resamples, results round trip, figure, the NWB workflow."""

from __future__ import annotations

import logging
from itertools import combinations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm
from sklearn.base import BaseEstimator

import irfa_nwb
from irfa_nwb.analysis.compare import (
    Metric,
    compare,
    comparison_table,
    paired_bootstrap_difference,
    plot_comparison,
    resampled_identification,
    verdict_text,
)
from irfa_nwb.analysis.metrics import (
    identification_accuracy,
    identification_rank,
    similarity_matrix,
)
from irfa_nwb.errors import InputError

SIZE = 8


def oracle_data(n: int = 40, *, n_test: int | None = None, seed: int = 0) -> xr.Dataset:
    """Images whose responses are their own pixels (one repeat): a model can be made exactly
    as good as we like. ``n_test`` marks a designated split."""
    rng = np.random.default_rng(seed)
    # smooth-ish images (blocky noise), so that SSIM and correlations are well defined
    coarse = rng.random((n, SIZE // 2, SIZE // 2, 3))
    images = np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2).astype(np.float32)
    responses = images.reshape(n, 1, -1)
    ids = np.arange(n) + 100
    ds = xr.Dataset(
        {"responses": (("stimulus_id", "repeat", "unit"), responses),
         "images": (("stimulus_id", "y", "x", "channel"), images)},
        coords={"stimulus_id": ids, "unit_id": ("unit", np.arange(responses.shape[-1]))},
        attrs={"source": "oracle_data"},
    )
    if n_test is not None:
        split = np.full(n, "train")
        split[rng.choice(n, n_test, replace=False)] = "test"
        ds = ds.assign_coords(split=("stimulus_id", split))
    return ds


class NoisyOracle(BaseEstimator):
    """Reconstructs ``scale * stimulus + offset`` plus Gaussian noise (seeded by
    ``random_state``, one draw per stimulus id); records what it was fitted on."""

    log: list = []

    def __init__(self, noise: float = 0.1, scale: float = 1.0, offset: float = 0.0,
                 clip: bool = True, random_state: int | None = None) -> None:
        self.noise = noise
        self.scale = scale
        self.offset = offset
        self.clip = clip
        self.random_state = random_state

    def fit(self, X, y):
        self.shape_ = tuple(np.asarray(y).shape[1:])
        NoisyOracle.log.append((id(self), self.random_state,
                                tuple(np.asarray(X["stimulus_id"].values).tolist())))
        return self

    def predict(self, X):
        x = np.asarray(X, dtype=np.float64)
        out = []
        for sid, row in zip(np.asarray(X["stimulus_id"].values).tolist(), x, strict=True):
            rng = np.random.default_rng([0 if self.random_state is None else
                                         self.random_state, int(sid)])
            img = self.scale * row.reshape(self.shape_) + self.offset
            out.append(img + self.noise * rng.standard_normal(img.shape))
        out = np.stack(out)
        return np.clip(out, 0, 1) if self.clip else out


def _mean_pixel(stimuli, reconstructions):
    return reconstructions.reshape(len(reconstructions), -1).mean(axis=1)


# ----------------------------------------------------------------------------- statistics
def test_resampled_identification_matches_ranks_and_brute_force():
    rng = np.random.default_rng(0)
    stim = rng.random((12, 6, 6, 3))
    recon = np.clip(stim + rng.normal(0, 0.4, stim.shape), 0, 1)
    sim = similarity_matrix(stim, recon)
    sim[3, 5] = sim[3, 3]  # a tie counts against the reconstruction
    ranks = identification_rank(stim, recon, similarity=sim).values
    assert resampled_identification(sim, np.ones(12))[0] == pytest.approx(
        identification_accuracy(ranks))
    assert resampled_identification(sim, np.ones(12), n_way="2")[0] == pytest.approx(
        identification_accuracy(ranks, 2))
    # a resample with duplicates, against an explicit list of draws
    counts = np.array([2, 0, 1, 3, 0, 1, 1, 0, 2, 1, 0, 1])
    draws = np.repeat(np.arange(12), counts)
    nway, twoway = [], []
    for i in draws:
        others = [j for j in draws if j != i]  # other draws of other stimuli
        better = sum(sim[i, j] >= sim[i, i] for j in others)
        nway.append(better == 0)
        twoway.append(1 - better / len(others))
    got = resampled_identification(sim, np.vstack([counts, np.ones(12)]))
    assert got[0] == pytest.approx(np.mean(nway))
    assert resampled_identification(sim, counts, n_way="2")[0] == pytest.approx(np.mean(twoway))
    assert np.isnan(resampled_identification(sim, np.eye(12)[0] * 5)[0])  # one stimulus only


def test_paired_bootstrap_difference_fixed_offset_has_zero_width():
    rng = np.random.default_rng(1)
    b = rng.normal(size=50)
    d, lo, hi = paired_bootstrap_difference(b + 0.25, b, n_bootstrap=300)
    assert d == pytest.approx(0.25) and lo == pytest.approx(0.25) and hi == pytest.approx(0.25)
    with pytest.raises(InputError):
        paired_bootstrap_difference([1, 2], [1])


def test_percentile_interval_covers_known_mean_difference():
    """200 small experiments with a known mean difference: ~95 % of intervals cover it."""
    rng = np.random.default_rng(2)
    hits = 0
    for rep in range(200):
        b = rng.normal(size=40)
        a = b + 0.3 + rng.normal(size=40)
        _, lo, hi = paired_bootstrap_difference(a, b, n_bootstrap=400, random_state=rep)
        hits += lo <= 0.3 <= hi
    assert 0.88 <= hits / 200 <= 0.99


def test_identification_interval_covers_known_two_way_difference():
    """Similarities with a known 2-way accuracy (own ~ N(mu, 1), others ~ N(0, 1):
    Phi(mu / sqrt 2)), two correlated models: the resampled 2-way intervals are calibrated."""
    rng = np.random.default_rng(3)
    n, mu_a, mu_b = 30, 1.6, 1.1
    truth = norm.cdf(mu_a / np.sqrt(2)) - norm.cdf(mu_b / np.sqrt(2))
    hits = 0
    for _ in range(150):
        shared = rng.normal(size=(n, n)) * np.sqrt(0.5)
        sa = mu_a * np.eye(n) + shared + rng.normal(size=(n, n)) * np.sqrt(0.5)
        sb = mu_b * np.eye(n) + shared + rng.normal(size=(n, n)) * np.sqrt(0.5)
        w = rng.multinomial(n, np.full(n, 1 / n), size=300)
        d = (resampled_identification(sa, w, n_way="2")
             - resampled_identification(sb, w, n_way="2"))
        lo, hi = np.quantile(d, [0.025, 0.975])
        hits += lo <= truth <= hi
    assert 0.86 <= hits / 150 <= 1.0


# ----------------------------------------------------------------------------- compare
def test_better_model_wins_on_every_metric_in_the_right_direction():
    ds = oracle_data(40)
    res = compare({"good": NoisyOracle(noise=0.1), "bad": NoisyOracle(noise=1.0)}, ds,
                  seeds=(0, 1), test_size=0.5, n_bootstrap=300)
    assert list(res["pair"].values) == ["good - bad"]
    for metric in ("pixel_r", "ssim", "identification", "identification_2way"):
        row = res.sel(pair="good - bad", metric=metric)
        assert float(row["difference_ci"].sel(bound="lower")) > 0, metric
        assert int(row["verdict"]) == 1
        assert verdict_text(res, "good - bad", metric) == "good better than bad (CI excludes 0)"
    # the order of the models flips signs and verdict words, not the conclusion
    flipped = compare({"bad": NoisyOracle(noise=1.0), "good": NoisyOracle(noise=0.1)}, ds,
                      seeds=(0, 1), test_size=0.5, n_bootstrap=300)
    np.testing.assert_allclose(flipped["difference"].values, -res["difference"].values)
    assert (flipped["verdict"].values == -1).all()
    assert verdict_text(flipped, "bad - good", "ssim") == "good better than bad (CI excludes 0)"
    assert "good better than bad (CI excludes 0)" in comparison_table(res)


def test_lower_is_better_metric_turns_the_verdict():
    ds = oracle_data(30, n_test=15)
    dark = Metric("mean_pixel", _mean_pixel, higher_is_better=False, label="mean pixel")
    res = compare({"bright": NoisyOracle(noise=0, scale=0.8, offset=0.1),
                   "dark": NoisyOracle(noise=0, scale=0.8)}, ds, seeds=(0,),
                  metrics=[dark], n_bootstrap=200)
    assert float(res["difference"].item()) == pytest.approx(0.1, abs=1e-6)
    assert int(res["verdict"].item()) == -1  # higher mean pixel is worse: "dark" wins
    assert verdict_text(res, "bright - dark", "mean_pixel").startswith("dark better than")


def test_identical_models_differ_by_exactly_zero():
    ds = oracle_data(30)
    res = compare({"a": NoisyOracle(noise=0.3), "b": NoisyOracle(noise=0.3)}, ds,
                  seeds=(0, 1, 2), test_size=10, n_bootstrap=200)
    assert (res["difference"].values == 0).all()
    assert (res["difference_ci"].values == 0).all()
    assert (res["difference_per_seed"].values == 0).all()
    assert (res["verdict"].values == 0).all()
    assert "no significant difference (CI includes 0)" in comparison_table(res)
    # but each model's own interval is not degenerate
    assert (np.diff(res["value_ci"].sel(metric="pixel_r").values, axis=-1) > 0).all()


def test_bootstrap_is_paired_fixed_offset_gives_zero_width():
    """Per-stimulus metric of A = that of B + 0.1 exactly: the difference's interval has width
    0 around 0.1, although each model's own interval is wide (stimuli differ a lot)."""
    ds = oracle_data(40)
    mean_pixel = Metric("mean_pixel", _mean_pixel)
    res = compare({"A": NoisyOracle(noise=0.05, scale=0.8, offset=0.1, clip=False),
                   "B": NoisyOracle(noise=0.05, scale=0.8, clip=False)}, ds,
                  seeds=(0, 1), test_size=0.5, metrics=[mean_pixel, "pixel_r"],
                  n_bootstrap=500)
    ci = res["difference_ci"].sel(metric="mean_pixel").values.ravel()
    np.testing.assert_allclose(ci, [0.1, 0.1], atol=1e-6)
    own = res["value_ci"].sel(metric="mean_pixel").values
    assert (own[:, 1] - own[:, 0] > 0.02).all()
    # a per-stimulus metric invariant to the offset: exactly the same for both
    assert np.abs(res["difference"].sel(metric="pixel_r").values).max() < 1e-6
    # the per-stimulus table reproduces the values
    per = res["per_stimulus"].sel(metric="mean_pixel")
    np.testing.assert_allclose(per.mean("stimulus_id", skipna=True).values.T,
                               res["value"].sel(metric="mean_pixel").values)


def test_seeds_give_their_own_splits_and_random_states():
    NoisyOracle.log.clear()
    ds = oracle_data(40)
    res = compare({"a": NoisyOracle(noise=0.2), "b": NoisyOracle(noise=0.5)}, ds,
                  seeds=(3, 4, 5), test_size=8, n_bootstrap=100)
    fits = NoisyOracle.log
    assert len(fits) == 6 and len({f[0] for f in fits}) >= 2  # fresh clones
    assert [f[1] for f in fits] == [3, 3, 4, 4, 5, 5]  # random_state set to the seed
    train_sets = [set(f[2]) for f in fits]
    for s in range(3):  # both models of a seed on the same training stimuli
        assert train_sets[2 * s] == train_sets[2 * s + 1]
        assert len(train_sets[2 * s]) == 32
    assert len({frozenset(t) for t in train_sets}) == 3  # each seed its own split
    held = res["held_out"]
    assert held.sum("stimulus_id").values.tolist() == [8, 8, 8]
    assert not held.all()  # the union of three different held-out sets
    for s in range(3):
        held_ids = set(res["stimulus_id"].values[held.values[:, s]].tolist())
        assert held_ids.isdisjoint(train_sets[2 * s])
        assert np.isnan(res["per_stimulus"].isel(seed=s).values[~held.values[:, s]]).all()
    assert res.attrs["split"] == "random"
    # the same call again: identical numbers (splits, seeds and bootstrap are seeded)
    again = compare({"a": NoisyOracle(noise=0.2), "b": NoisyOracle(noise=0.5)}, ds,
                    seeds=(3, 4, 5), test_size=8, n_bootstrap=100)
    xr.testing.assert_identical(again.drop_vars("fit_seconds"), res.drop_vars("fit_seconds"))


def test_on_fit_hands_over_each_fitted_model():
    ds = oracle_data(40)
    seen = []
    compare({"a": NoisyOracle(noise=0.2), "b": NoisyOracle(noise=0.5)}, ds, seeds=(3, 4),
            test_size=8, n_bootstrap=50,
            on_fit=lambda name, seed, est: seen.append((name, seed, est)))
    assert [(n, s) for n, s, _ in seen] == [("a", 3), ("b", 3), ("a", 4), ("b", 4)]
    assert all(est.random_state == s and hasattr(est, "shape_") for _, s, est in seen)


def test_designated_split_shares_one_resample_across_seeds():
    """Seeds that score the same held-out stimuli must not narrow the interval: with models
    that ignore the seed, the seed-averaged interval equals each seed's interval."""
    ds = oracle_data(40, n_test=12)

    class Deterministic(NoisyOracle):
        def __init__(self, noise: float = 0.1, scale: float = 1.0, offset: float = 0.0,
                     clip: bool = True) -> None:
            super().__init__(noise, scale, offset, clip, random_state=None)

    res = compare({"a": Deterministic(noise=0.3), "b": Deterministic(noise=0.6)}, ds,
                  seeds=(0, 1, 2), n_bootstrap=300)
    assert res.attrs["split"] == "designated"
    assert res.sizes["stimulus_id"] == 12 and bool(res["held_out"].all())
    for s in range(3):
        np.testing.assert_allclose(res["difference_ci_per_seed"].isel(seed=s).values,
                                   res["difference_ci"].values)
    test_ids = ds["stimulus_id"].values[ds["split"].values == "test"]
    assert set(res["stimulus_id"].values.tolist()) == set(test_ids.tolist())


def test_round_trip_through_write_results(tmp_path):
    ds = oracle_data(30)
    res = compare({"a": NoisyOracle(noise=0.2), "b": NoisyOracle(noise=0.4),
                   "c": NoisyOracle(noise=0.6)}, ds, seeds=(0, 1, 2), test_size=10,
                  n_bootstrap=100)
    assert res.sizes["pair"] == 3
    path = irfa_nwb.write_results(tmp_path / "comparison.nwb", res)
    back = irfa_nwb.read_results(path)
    xr.testing.assert_identical(back.drop_attrs(), res.drop_attrs())
    for key, value in res.attrs.items():
        if key != "source":
            assert back.attrs[key] == value, key
    assert comparison_table(back) == comparison_table(res)
    # one seed and one pair (dims of length 1) survive too
    one = compare({"a": NoisyOracle(noise=0.2), "b": NoisyOracle(noise=0.4)}, ds, seeds=(7,),
                  test_size=10, n_bootstrap=50)
    path = irfa_nwb.write_results(tmp_path / "one.nwb", one)
    xr.testing.assert_identical(irfa_nwb.read_results(path).drop_attrs(), one.drop_attrs())


def test_different_reconstruction_sizes_are_scored_at_the_smallest(caplog):
    class Upsampled(NoisyOracle):
        def predict(self, X):
            out = super().predict(X)
            return np.repeat(np.repeat(out, 2, axis=1), 2, axis=2)

    ds = oracle_data(30)
    with caplog.at_level(logging.WARNING, logger="irfa_nwb.analysis"):
        res = compare({"big": Upsampled(noise=0.0), "small": NoisyOracle(noise=0.0)}, ds,
                      seeds=(0,), test_size=10, n_bootstrap=50)
    assert "different sizes" in caplog.text
    assert res.attrs["image_size"] == SIZE
    # resized back to the stimuli's size, the upsampled reconstruction still matches them
    assert float(res["value_mean"].sel(model="big", metric="pixel_r")) > 0.8


def test_input_errors():
    ds = oracle_data(20)
    with pytest.raises(InputError, match="at least two"):
        compare({"a": NoisyOracle()}, ds)
    with pytest.raises(InputError, match="unknown metric"):
        compare({"a": NoisyOracle(), "b": NoisyOracle()}, ds, metrics=("psnr",))
    with pytest.raises(InputError, match="needs a function"):
        Metric("psnr")
    with pytest.raises(InputError, match="fit / predict"):
        compare({"a": NoisyOracle(), "b": object()}, ds)
    with pytest.raises(InputError, match="one per stimulus"):
        compare({"a": NoisyOracle(), "b": NoisyOracle()}, ds, seeds=(0,), test_size=5,
                metrics=[Metric("bad", lambda s, r: np.zeros(3))])
    with pytest.raises(InputError, match="confidence"):
        compare({"a": NoisyOracle(), "b": NoisyOracle()}, ds, confidence=95)
    with pytest.raises(InputError, match="Dataset"):
        compare({"a": NoisyOracle(), "b": NoisyOracle()}, ds["responses"])


# ----------------------------------------------------------------------------- reporting
def test_figure_shows_models_values_and_difference_intervals():
    ds = oracle_data(40)
    res = compare({"good": NoisyOracle(noise=0.1), "bad": NoisyOracle(noise=1.0),
                   "twin": NoisyOracle(noise=0.1)}, ds, seeds=(0, 1), test_size=0.5,
                  n_bootstrap=200, metrics=("pixel_r", "identification_2way"))
    fig = plot_comparison(res)
    axes = np.array(fig.axes).reshape(2, 2)
    assert [a.get_title() for a in axes[0]] == ["pixel r", "2-way identification"]
    for k, metric in enumerate(("pixel_r", "identification_2way")):
        top, bottom = axes[0, k], axes[1, k]
        assert [t.get_text() for t in top.get_xticklabels()] == ["good", "bad", "twin"]
        means = {c.get_label(): c for c in top.containers}
        for i, model in enumerate(["good", "bad", "twin"]):
            (x, y), = means[model].lines[0].get_xydata()
            assert x == i and y == pytest.approx(float(res["value_mean"].sel(
                model=model, metric=metric)))
        pairs = [f"{a} - {b}" for a, b in combinations(["good", "bad", "twin"], 2)]
        assert [t.get_text() for t in bottom.get_xticklabels()] == pairs
        bars = {c.get_label(): c for c in bottom.containers}
        for j, pair in enumerate(pairs):
            segment = bars[pair].lines[2][0].get_segments()[0]
            lo, hi = res["difference_ci"].sel(pair=pair, metric=metric).values
            np.testing.assert_allclose(segment, [[j, lo], [j, hi]])
        colour = bars["good - bad"].lines[0].get_color()
        assert colour == "tab:green"  # first model significantly better
        assert bars["bad - twin"].lines[0].get_color() == "tab:red"
        assert bars["good - twin"].lines[0].get_color() == "0.4"
        assert any(line.get_linestyle() == "--" for line in bottom.get_lines())


def test_table_lists_models_pairs_and_settings():
    ds = oracle_data(30, n_test=10)
    res = compare({"IRFA-like": NoisyOracle(noise=0.2), "ridge-like": NoisyOracle(noise=0.5)},
                  ds, seeds=(0, 1, 2), n_bootstrap=100, confidence=0.9)
    text = comparison_table(res)
    assert "3 seed(s) (0, 1, 2), designated split, 10 held-out stimuli" in text
    assert "90% paired bootstrap intervals (100 resamples" in text
    for label in ("pixel r", "SSIM", "n-way identification", "2-way identification"):
        assert label in text
    assert text.count("IRFA-like - ridge-like") == 4
    assert "3/3" in text


# ----------------------------------------------------------------------------- workflow
def test_compare_nwb_on_a_simulated_session(tmp_path, caplog):
    """The NWB workflow with IRFA (tiny) and ridge: results file, figure, logged table."""
    pytest.importorskip("torch")
    from irfa_nwb.workflows.compare import compare_nwb, default_figure_path

    src = irfa_nwb.write_simulated_recording(
        tmp_path / "session.nwb", n_stimuli=44, n_test=12, n_repeats=2, image_size=16,
        random_state=0)
    tiny = dict(image_size=16, channels=4, width=8, max_iter=1, batch_size=8,
                perceptual_weight=0.0, adversarial_weight=0.0, verbose=0)
    with caplog.at_level(logging.INFO, logger="irfa_nwb.workflows"):
        out = compare_nwb(src, tmp_path / "comparison.nwb", model_kwargs=tiny, seeds=(0, 1),
                          n_bootstrap=100)
    assert out.results_path.is_file()
    assert out.figure_path == default_figure_path(tmp_path / "comparison.nwb")
    assert out.figure_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "IRFA - ridge" in caplog.text and "verdict" in caplog.text
    back = irfa_nwb.read_results(out.results_path)
    xr.testing.assert_identical(back.drop_attrs(), out.results.drop_attrs())
    assert back.attrs["source"]["source"] == str(src)
    assert back.attrs["model_params"]["IRFA.channels"] == 4
    assert back.attrs["model_params"]["ridge.image_size"] == 16
    assert out.results.attrs["split"] == "designated"
    assert out.results.sizes["stimulus_id"] == 12
    assert str(out).startswith(out.table)
    # outputs are checked before anything is fitted
    with pytest.raises(InputError, match="already exists"):
        compare_nwb(src, tmp_path / "comparison.nwb", model_kwargs=tiny)


def test_identification_is_recomputed_inside_the_resample():
    """One bootstrap resample, reproduced by hand: the differences (and a model's 2-way value)
    are resampled_identification of the similarity matrix restricted to the drawn stimuli; a
    model's own n-way value resamples targets against all held-out candidates."""
    ds = oracle_data(30, n_test=12)
    models = {"a": NoisyOracle(noise=0.6), "b": NoisyOracle(noise=0.9)}
    res = compare(models, ds, seeds=(4,), n_bootstrap=1, random_state=5)
    test = ds.isel(stimulus_id=np.flatnonzero(ds["split"].values == "test"))
    counts = np.random.default_rng(5).multinomial(12, np.full(12, 1 / 12), size=1)
    got: dict[tuple[str, str], float] = {}
    for name, est in models.items():
        fitted = est.set_params(random_state=4).fit(test["responses"].isel(repeat=0),
                                                     test["images"])
        recon = fitted.predict(test["responses"].isel(repeat=0)).astype(np.float32)
        sim = similarity_matrix(test["images"].values, recon)
        for metric, n_way in (("identification", "all"), ("identification_2way", "2")):
            got[name, metric] = resampled_identification(sim, counts, n_way=n_way)[0]
        np.testing.assert_allclose(
            res["value_ci"].sel(model=name, metric="identification_2way").values,
            [got[name, "identification_2way"]] * 2)
        rank_one = identification_rank(test["images"].values, recon).values == 1
        own = float(counts[0] @ rank_one / 12)
        np.testing.assert_allclose(
            res["value_ci"].sel(model=name, metric="identification").values, [own, own])
    for metric in ("identification", "identification_2way"):
        expected = got["a", metric] - got["b", metric]
        np.testing.assert_allclose(res["difference_ci"].sel(metric=metric).values.ravel(),
                                   [expected, expected])


def test_compare_nwb_takes_a_loaded_dataset(tmp_path):
    from irfa_nwb.workflows.compare import compare_nwb

    ds = oracle_data(30, n_test=10)
    models = {"a": NoisyOracle(noise=0.2), "b": NoisyOracle(noise=0.4)}
    out = compare_nwb(ds, tmp_path / "c.nwb", estimators=models, seeds=(0, 1, 2),
                      n_bootstrap=50, figure=False)
    assert out.figure_path is None and not list(tmp_path.glob("*.png"))
    back = irfa_nwb.read_results(out.results_path)
    assert back.attrs["source"]["source"] == "oracle_data"
    assert comparison_table(back) == out.table
    with pytest.raises(InputError, match="already loaded"):
        compare_nwb(ds, tmp_path / "d.nwb", estimators=models, load_kwargs={"window": 0.1})
