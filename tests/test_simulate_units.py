"""Tests of the simulator's unit models and noise: the properties that make it realistic.

Every threshold below was measured with the fixed seeds used here and holds with a margin;
the previous model (V1 log-energy + linear ON/OFF, V4 log pooled energy + linear colour /
luminance, IT random linear combination of global features, plain Poisson noise) fails the
Fano, phase, nonlinearity and IT-decodability tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from irfa_nwb.data import stack_presentations
from irfa_nwb.errors import InputError
from irfa_nwb.simulation import make_cortex, natural_patches, sample_counts, simulate_recording
from irfa_nwb.simulation.noise import modulated_poisson

SIZE = 32


@pytest.fixture(scope="module")
def cortex():
    return make_cortex(image_size=SIZE, units_per_array=12, random_state=0)


@pytest.fixture(scope="module")
def natural(cortex):
    images = natural_patches(150, SIZE, random_state=5)
    return images, cortex.expected_counts(images)


# -- noise ---------------------------------------------------------------------------------
def test_fano_factors_of_repeats_fall_in_the_intended_range(cortex, natural):
    _, mu = natural
    repeats = 60
    counts = cortex.sample_counts(np.broadcast_to(mu, (repeats, *mu.shape)), rng_(0))
    assert counts.shape == (repeats, *mu.shape)
    assert np.all(counts == np.round(counts)) and np.all(counts >= 0)
    assert abs(counts.sum() / (repeats * mu.sum()) - 1) < 0.01  # unbiased around mu
    # per-unit Fano factor over natural images, from the known expected counts...
    fano = ((counts - mu) ** 2).sum(axis=(0, 1)) / (repeats * mu.sum(axis=0))
    assert 0.9 < fano.min() and fano.max() < 1.7, np.percentile(fano, [0, 100])
    assert 1.1 < np.median(fano) < 1.4
    # ...as the model says (variance mu + s2 mu^2)...
    predicted = 1 + cortex.gain_variance * (mu**2).sum(axis=0) / mu.sum(axis=0)
    assert np.abs(fano - predicted).max() < 0.12
    # ...and from the repeats alone (sample variance / sample mean)
    ratio = counts.var(axis=0, ddof=1).sum(axis=0) / counts.mean(axis=0).sum(axis=0)
    assert np.abs(ratio - fano).max() < 0.1
    assert np.all((cortex.fano >= 1.0) & (cortex.fano <= 1.5))
    # the Fano factor grows with the rate (modulated Poisson): high-rate stimuli are noisier
    high = mu > np.median(mu, axis=0)
    sq = (counts - mu) ** 2
    f_high = (sq * high).sum(axis=(0, 1)) / (repeats * (mu * high).sum(axis=0))
    f_low = (sq * ~high).sum(axis=(0, 1)) / (repeats * (mu * ~high).sum(axis=0))
    assert np.mean(f_high > f_low) > 0.8


def test_trial_gain_is_shared_within_arrays(cortex, natural):
    _, mu = natural
    counts = cortex.sample_counts(np.broadcast_to(mu, (60, *mu.shape)), rng_(1))
    resid = ((counts - mu) / np.sqrt(mu)).reshape(-1, mu.shape[1])
    corr = np.corrcoef(resid.T)
    group = cortex.electrode_group
    same = (group[:, None] == group[None]) & ~np.eye(group.size, dtype=bool)
    other = group[:, None] != group[None]
    assert 0.03 < corr[same].mean() < 0.2  # realistic noise correlations within an array
    assert abs(corr[other].mean()) < 0.01  # none across arrays


def test_fixed_fano_noise_and_errors(cortex, natural):
    _, mu = natural
    poisson = cortex.sample_counts(np.broadcast_to(mu, (40, *mu.shape)), rng_(2), fano=1.0)
    fano = ((poisson - mu) ** 2).sum() / (40 * mu.sum())
    assert abs(fano - 1.0) < 0.03
    np.testing.assert_array_equal(cortex.sample_counts(mu, rng_(3), noise="none"), mu)
    with pytest.raises(InputError, match="fano"):
        sample_counts(mu, rng_(3), fano=0.5)
    with pytest.raises(InputError, match="units"):
        modulated_poisson(mu[:, :5], rng_(3), gain_variance=cortex.gain_variance,
                          groups=np.zeros(cortex.n_units, int))
    with pytest.raises(InputError, match="fano_range"):
        make_cortex(image_size=16, units_per_array=2, fano_range=(0.5, 1.2))


def test_firing_rates_and_poorly_tuned_units(cortex, natural):
    _, mu = natural
    rate = mu / cortex.window
    mean_rate, peak_rate = rate.mean(axis=0), rate.max(axis=0)
    assert mean_rate.min() < 10 and 40 < mean_rate.max() < 120  # a few to tens of spikes/s
    assert 50 < np.median(peak_rate) < 150 and peak_rate.max() < 250
    poor = ~cortex.well_tuned
    assert 0.05 < poor.mean() < 0.3
    spread = rate.std(axis=0)
    assert np.median(spread[poor]) < 0.3 * np.median(spread[~poor])


# -- unit models ---------------------------------------------------------------------------
def _grating(size, x0, y0, theta, wavelength, phase, aperture=None, channel=0, amplitude=100):
    """uint8 RGB grating on grey in a colour direction (0 lum, 1 red-green, 2 blue-yellow)."""
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    proj = (xx - x0) * np.cos(theta) + (yy - y0) * np.sin(theta)
    wave = np.cos(2 * np.pi * proj / wavelength + phase)
    if aperture is not None:
        wave = wave * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * aperture**2))
    direction = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0], [-0.5, -0.5, 1.0]])[channel]
    return np.rint(128 + amplitude * wave[..., None] * direction).astype(np.uint8)


def test_complex_cells_are_phase_invariant_simple_cells_are_not():
    """Drift the phase of each luminance unit's preferred grating over its RF.

    At 64 px (V1 wavelengths 4-10 px; at 32 px they sit at 3-4 px, too close to the pixel
    grid for a quadrature pair). Measured: simple cells 1.0 (all), complex at most 0.044.
    """
    size = 64
    cortex = make_cortex(image_size=size, arrays={"V1": 2}, units_per_array=16, random_state=0)
    v1 = cortex.models["V1"]
    lum = np.flatnonzero(v1.channel == 0)
    phases = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    drift = np.stack([
        _grating(size, cortex.rf_x[u], cortex.rf_y[u], v1.theta[j], v1.wavelength[j], p)
        for j, u in zip(lum, v1.units[lum], strict=True)
        for p in phases
    ])
    z = cortex.drive(drift).reshape(lum.size, phases.size, -1)
    z = z[np.arange(lum.size), :, v1.units[lum]]  # (unit, phase)
    blank = cortex.drive(np.full((1, size, size, 3), 128, np.uint8))[0, v1.units[lum]]
    peak = z.max(axis=1)
    assert np.all(peak - blank > 1.0)  # the preferred grating drives every unit
    modulation = (peak - z.min(axis=1)) / (peak - blank)
    kind = v1.unit_type[lum]
    simple, complex_ = modulation[kind == "simple"], modulation[kind == "complex"]
    assert simple.size >= 5 and complex_.size >= 5
    assert simple.min() > 0.9  # half-rectified: silent at the anti-preferred phase
    assert complex_.max() < 0.15 and np.median(complex_) < 0.05


def test_a_probe_inside_the_rf_drives_v1_one_outside_does_not(cortex):
    """The preferred grating in a small aperture (4 phases) at the RF and at the mirror point."""
    v1 = cortex.models["V1"]
    blank = cortex.expected_counts(np.full((1, SIZE, SIZE, 3), 128, np.uint8))[0]
    tuned = np.flatnonzero(cortex.well_tuned[v1.units])
    probes = []
    for j in tuned:
        u = v1.units[j]
        cx, cy, sig = cortex.rf_x[u], cortex.rf_y[u], cortex.rf_sigma[u]
        assert np.hypot(1 - 2 * cx, 1 - 2 * cy) > 0.3  # mirror point through the centre
        probes += [
            _grating(SIZE, x, y, v1.theta[j], v1.wavelength[j], p, 2 * sig, v1.channel[j])
            for x, y in ((cx, cy), (1 - cx, 1 - cy))
            for p in (0, np.pi / 2, np.pi, 3 * np.pi / 2)
        ]
    counts = cortex.expected_counts(np.stack(probes)).reshape(tuned.size, 2, 4, -1)
    units = v1.units[tuned]
    change = np.abs(counts[np.arange(tuned.size), :, :, units] - blank[units, None, None])
    inside, outside = change[:, 0].max(axis=1), change[:, 1].max(axis=1)
    assert tuned.size > 30
    assert inside.min() > 2.0, inside.min()  # spikes per window
    assert np.all(outside < 0.01 * inside), (outside / inside).max()


def _nonlinearity(cortex, area):
    """Per unit: |z(mean of two images) - mean of z| relative to |z(a) - z(b)|."""
    images = natural_patches(400, 16, random_state=7).astype(float)
    a, b = images[:200], images[200:]
    mix = np.rint((a + b) / 2).astype(np.uint8)
    za, zb = cortex.drive(a.astype(np.uint8)), cortex.drive(b.astype(np.uint8))
    zm = cortex.drive(mix)
    m = cortex.area == area
    dev = np.abs(zm[:, m] - (za[:, m] + zb[:, m]) / 2).mean(axis=0)
    return dev / np.abs(za[:, m] - zb[:, m]).mean(axis=0)


def test_v4_and_it_drives_are_nonlinear_in_the_image():
    """Response to the average of two images differs from the average of the responses.

    Measured (seed 0, 16 px): V4 median 0.31 (min 0.22), IT 0.41 (0.28); the previous model
    gave V4 0.21 (0.11), IT 0.15 (0.03). A drive linear in the image gives 0.
    """
    cortex = make_cortex(image_size=16, units_per_array=16, random_state=0)
    v4, it = _nonlinearity(cortex, "V4"), _nonlinearity(cortex, "IT")
    assert np.median(v4) > 0.25 and v4.min() > 0.15, (np.median(v4), v4.min())
    assert np.median(it) > 0.3 and it.min() > 0.2, (np.median(it), it.min())


def test_it_is_less_linearly_decodable_than_v1():
    """Ridge from 48 V1 units reconstructs pixels better than ridge from 48 IT units.

    Measured (seed 0, 16 px, 640 training / 160 test images, noisy counts): mean per-pixel r
    V1 0.65, IT 0.34 (the previous model: V1 0.68, IT 0.74).
    """
    from sklearn.linear_model import Ridge

    ds, cortex = simulate_recording(n_stimuli=800, n_test=0, image_size=16, random_state=0,
                                    arrays={"V1": 2, "IT": 2}, units_per_array=24,
                                    return_cortex=True)
    r = stack_presentations(ds)
    X = r.values.astype(float)
    Y = ds["images"].values[r["stimulus_id"].values].reshape(len(X), -1) / 255.0
    train, test = slice(0, 640), slice(640, None)
    pixel_r, image_r = {}, {}
    for area in ("V1", "IT"):
        m = cortex.area == area
        assert m.sum() == 48
        Z = (X[:, m] - X[train, m].mean(0)) / X[train, m].std(0)
        pred = Ridge(alpha=80.0).fit(Z[train], Y[train]).predict(Z[test])
        a, b = pred - pred.mean(0), Y[test] - Y[test].mean(0)
        pixel_r[area] = np.mean((a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0)))
        a = pred - pred.mean(1, keepdims=True)
        b = Y[test] - Y[test].mean(1, keepdims=True)
        image_r[area] = np.mean((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1)))
    assert pixel_r["V1"] > 0.5, pixel_r
    assert pixel_r["V1"] > pixel_r["IT"] + 0.15, pixel_r
    assert image_r["V1"] > image_r["IT"], image_r


def test_responses_do_not_depend_on_the_other_images(cortex, natural):
    images, mu = natural
    for k in (0, 77):
        np.testing.assert_allclose(cortex.expected_counts(images[k : k + 1])[0], mu[k],
                                   rtol=1e-4)
    np.testing.assert_allclose(cortex.expected_counts(images[::-1])[::-1], mu, rtol=1e-4)


def test_unit_types_and_layout(cortex):
    kinds = {a: set(cortex.unit_type[cortex.area == a]) for a in ("V1", "V4", "IT")}
    assert kinds == {"V1": {"simple", "complex"}, "V4": {"curvature", "texture"},
                     "IT": {"global"}}
    v1 = cortex.models["V1"]
    assert set(v1.channel) == {0, 1, 2}  # luminance and both colour-opponent subtypes
    for name, cx, cy in zip(cortex.array_names, cortex.array_rf_x, cortex.array_rf_y,
                            strict=True):
        sel = cortex.electrode_group == name
        assert cortex.rf_x[sel].mean() == pytest.approx(cx, abs=1e-12)
        assert cortex.rf_y[sel].mean() == pytest.approx(cy, abs=1e-12)


def rng_(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
