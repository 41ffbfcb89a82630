"""Per-area unit models of the virtual cortex: image -> non-negative drive per unit.

Each model registers the linear filters it needs on a shared :class:`~.filters.LinearStage`,
reads the stage's responses and the luminance energy maps of an :class:`~.filters.EnergyBank`
(both computed once per block of images, see :class:`Inputs`), and returns one drive per unit.
Every constant is fixed when the cortex is built, from reference natural patches
(:meth:`UnitModel.calibrate`), so a unit's response to an image never depends on which other
images are shown. The cortex standardises the drives and maps them to firing rates.

V1 (:class:`V1Units`)
    Simple cells: half-squared linear Gabor (phase-sensitive). Complex cells: Gabor energy
    (quadrature pair; phase-invariant). Both are divided by the local contrast energy around
    the RF (divisive normalisation, a Naka-Rushton contrast response) and have an ON or OFF
    response to the local mean. Luminance, red-green or blue-yellow opponent subtypes.
V4 (:class:`V4Units`)
    Nonlinear combinations of pooled, normalised V1-like energies: curvature / angle units
    (geometric mean of two orientations in two adjacent sub-fields: an AND), texture units
    (normalised co-occurrence of two orientation energies over the RF), plus for some units a
    normalised hue tuning and a rectified surface-luminance term.
IT (:class:`ITUnits`)
    Large, central RFs read by a random sparse two-layer ReLU network: log energies, colour
    and contrast of a 3 x 3 grid of sub-fields feed a shared hidden layer of sparse features;
    each unit reads a few hidden features. No mean-luminance input: IT ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .filters import N_ORI, WAVELENGTHS, LinearStage, gabor_pairs, gaussian_windows
from .filters import pool_windows as _pool
from .layout import ArrayLayout

__all__ = ["Inputs", "ITUnits", "UnitModel", "V1Units", "V4Units", "robust_scale"]

_CHANNELS = ("lum", "rg", "by")
_M50 = 0.2  # V1 luminance semi-saturation (the luminance plane spans -0.5 .. 0.5)


@dataclass
class Inputs:
    """What the unit models read, computed once per block of images.

    Attributes
    ----------
    linear : dict of str to numpy.ndarray
        Responses of the :class:`~.filters.LinearStage`, ``(n, k)`` per registered key.
    energy : numpy.ndarray or None
        Luminance energy maps ``(n, channels, pixels)`` at the pooled resolution.
    """

    linear: dict[str, np.ndarray]
    energy: np.ndarray | None = None


def robust_scale(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Median and half the 16-84 % range (at least half the SD, for zero-inflated data)."""
    lo, med, hi = np.percentile(x, [16, 50, 84], axis=axis)
    return med, np.maximum(np.maximum((hi - lo) / 2.0, 0.5 * x.std(axis=axis)), 1e-9)


def _matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` over the last axis of ``x`` as one 2-D product."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def _tuning(pref: np.ndarray, scale: np.ndarray, kappa: float = 2.0) -> np.ndarray:
    """Orientation tuning over the energy channels, ``(channels, units)``, columns sum to 1.

    A von Mises bump over the :data:`~.filters.N_ORI` orientations at the unit's scale.
    """
    ori = np.pi * np.arange(N_ORI) / N_ORI
    bump = np.exp(kappa * (np.cos(2 * (ori[:, None] - pref)) - 1.0))
    out = np.zeros((N_ORI * len(WAVELENGTHS), pref.size))
    for j in range(pref.size):
        out[scale[j] * N_ORI : (scale[j] + 1) * N_ORI, j] = bump[:, j]
    return out / out.sum(axis=0, keepdims=True)


def _scale_mask(scale: np.ndarray) -> np.ndarray:
    """``(channels, units)`` indicator of the channels at each unit's scale."""
    return _tuning(np.zeros(scale.size), scale, kappa=0.0) * N_ORI


@dataclass
class UnitModel:
    """Base class: the units of one area and how they turn images into a drive."""

    area: ClassVar[str] = ""
    #: whether :meth:`drive` reads :attr:`Inputs.energy`
    needs_energy: ClassVar[bool] = False

    units: np.ndarray  # indices of the area's units in the cortex
    unit_type: np.ndarray  # per unit, str

    def register(self, stage: LinearStage) -> None:
        """Add the linear filters the model reads to ``stage``."""

    def calibrate(self, inputs: Inputs) -> None:
        """Fix the model's constants on reference natural images."""

    def drive(self, inputs: Inputs) -> np.ndarray:
        """Non-negative drive ``(n, units)`` float64."""
        raise NotImplementedError


@dataclass
class V1Units(UnitModel):
    """Simple and complex cells with divisive normalisation and an ON / OFF luminance term.

    With ``e``, ``o`` the even / odd Gabor responses on the unit's channel, ``m`` the local
    mean and ``V`` the local contrast energy (windowed variance; colour units add the
    luminance contrast energy) in a Gaussian pool 1.5 x the RF radius, and
    ``l = dc m / sqrt(m50**2 + m**2)`` the unit's ON (``dc > 0``) or OFF response to the local
    mean (luminance gain control, ``m50 = 0.2`` on planes spanning 1)::

        simple:  [(cos(phi) e + sin(phi) o) / sqrt(c50 + V) + l]_+ ** 2
        complex: (e ** 2 + o ** 2) / (c50 + V) + [l]_+ ** 2

    Simple cells are half-squared linear filters (unbalanced ON / OFF sub-regions), hence
    phase-sensitive; complex cells are energy units, phase-invariant (a grating's local mean
    is zero whatever its phase). ``c50`` (semi-saturation) is a per-unit fraction (0.1-0.5)
    of the median ``V`` over natural images: a Naka-Rushton contrast response that saturates
    near typical natural contrasts. ``|dc|`` is 0.2-0.6. The luminance term makes every
    unit carry the mean luminance at its RF, as multi-unit activity on a V1 array does.
    """

    area: ClassVar[str] = "V1"

    channel: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wavelength: np.ndarray = field(default_factory=lambda: np.zeros(0))
    c50_fraction: np.ndarray = field(default_factory=lambda: np.zeros(0))
    c50: np.ndarray | None = None
    filters: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, layout: ArrayLayout, size: int, rng: np.random.Generator, p_simple: float = 0.45
    ) -> V1Units:
        """Random V1 units at the layout's V1 RFs."""
        u = layout.units_of("V1")
        cx, cy, sig = layout.rf_x[u], layout.rf_y[u], layout.rf_sigma[u]
        lam = np.maximum(sig * rng.uniform(2.0, 3.0, size=u.size), 3.0 / size)
        theta = rng.uniform(0, np.pi, size=u.size)
        channel = rng.choice(3, size=u.size, p=[0.7, 0.15, 0.15])
        simple = rng.random(u.size) < p_simple
        phase = rng.uniform(0, 2 * np.pi, size=u.size)
        # ON / OFF luminance offset of the simple cells (unbalanced sub-regions)
        dc = rng.choice([-1.0, 1.0], size=u.size) * rng.uniform(0.2, 0.6, size=u.size)
        even, odd = gabor_pairs(size, cx, cy, sig, lam, theta)
        pool = gaussian_windows(size, cx, cy, 1.5 * sig).astype(np.float32)
        return cls(
            units=u,
            unit_type=np.where(simple, "simple", "complex"),
            channel=channel,
            phase=phase,
            dc=dc,
            theta=theta,
            wavelength=lam,
            c50_fraction=rng.uniform(0.1, 0.5, size=u.size),
            filters={"even": even, "odd": odd, "pool": pool},
        )

    @property
    def simple(self) -> np.ndarray:
        """Per unit: simple (True) or complex (False) cell."""
        return self.unit_type == "simple"

    def register(self, stage: LinearStage) -> None:
        f = self.filters
        for c, name in enumerate(_CHANNELS):
            idx = np.flatnonzero(self.channel == c)
            if not idx.size:
                continue
            stage.add(f"v1_even_{c}", name, f["even"][:, idx])
            stage.add(f"v1_odd_{c}", name, f["odd"][:, idx])
            stage.add(f"v1_mean_{c}", name, f["pool"][:, idx])
            stage.add(f"v1_sq_{c}", name + "2", f["pool"][:, idx])
            if c:  # colour units: the normalisation pool also holds luminance contrast
                stage.add(f"v1_lmean_{c}", "lum", f["pool"][:, idx])
                stage.add(f"v1_lsq_{c}", "lum2", f["pool"][:, idx])

    def _parts(self, inputs: Inputs) -> tuple[np.ndarray, ...]:
        """Per unit: linear simple-cell response, energy, local mean, contrast energy."""
        lin = inputs.linear
        n = next(iter(lin.values())).shape[0]
        shape = (n, self.units.size)
        linear, energy, mean, contrast = (np.empty(shape) for _ in range(4))
        for c in range(3):
            idx = np.flatnonzero(self.channel == c)
            if not idx.size:
                continue
            e = lin[f"v1_even_{c}"].astype(np.float64)
            o = lin[f"v1_odd_{c}"].astype(np.float64)
            m = lin[f"v1_mean_{c}"].astype(np.float64)
            v = np.maximum(lin[f"v1_sq_{c}"] - m * m, 0.0)
            if c:
                lm = lin[f"v1_lmean_{c}"].astype(np.float64)
                v += np.maximum(lin[f"v1_lsq_{c}"] - lm * lm, 0.0)
            linear[:, idx] = np.cos(self.phase[idx]) * e + np.sin(self.phase[idx]) * o
            energy[:, idx] = e * e + o * o
            mean[:, idx] = m
            contrast[:, idx] = v
        return linear, energy, mean, contrast

    def calibrate(self, inputs: Inputs) -> None:
        *_, contrast = self._parts(inputs)
        self.c50 = self.c50_fraction * np.maximum(np.median(contrast, axis=0), 1e-6)

    def drive(self, inputs: Inputs) -> np.ndarray:
        linear, energy, mean, contrast = self._parts(inputs)
        lum = self.dc * mean / np.sqrt(_M50**2 + mean**2)
        simple = np.maximum(linear / np.sqrt(self.c50 + contrast) + lum, 0.0) ** 2
        complex_ = energy / (self.c50 + contrast) + np.maximum(lum, 0.0) ** 2
        return np.where(self.simple, simple, complex_)


@dataclass
class V4Units(UnitModel):
    """Curvature and texture units on pooled, normalised luminance energies; hue; luminance.

    With ``E_c(x)`` the energy maps, ``t_a`` / ``t_b`` orientation tunings (von Mises over the
    4 orientations at the unit's scale), ``T(x)`` the energy summed over orientations at that
    scale, and ``<.>_w`` pooling over a Gaussian window ``w``::

        curvature: sqrt(n_1 n_2),  n_i = <t_i E>_{w_i} / (c50_i + <T>_{w_i})
                   (two sub-fields 0.5 RF radius either side of the centre, orientations
                   45-90 degrees apart: an AND of two edge segments, i.e. an angle / curve)
        texture:   sqrt(<(t_a E)(t_b E)>_w / (c50 + <T>_w ** 2))
                   (normalised co-occurrence of two orientation energies over the RF)
        hue:       [rg cos(h) + by sin(h)]_+ ** 2 / (c50 + rg ** 2 + by ** 2)  (window means)
        luminance: [+-lum]_+  (window mean; ON or OFF)

    Each term is standardised on natural images and the terms are summed with per-unit
    weights (shape 1; hue 0 or 0.5-1 for 40 % of the units; luminance 0.3-0.8).
    """

    area: ClassVar[str] = "V4"
    needs_energy: ClassVar[bool] = True

    tuning_a: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    tuning_b: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    scale_mask: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    hue: np.ndarray = field(default_factory=lambda: np.zeros(0))
    on_off: np.ndarray = field(default_factory=lambda: np.zeros(0))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    full_window: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    c50: dict[str, np.ndarray] = field(default_factory=dict)
    loc: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def build(cls, layout: ArrayLayout, size: int, rng: np.random.Generator) -> V4Units:
        """Random V4 units at the layout's V4 RFs."""
        u = layout.units_of("V4")
        m = u.size
        cx, cy, sig = layout.rf_x[u], layout.rf_y[u], layout.rf_sigma[u]
        curvature = rng.random(m) < 0.5
        scale = rng.integers(0, len(WAVELENGTHS), size=m)
        pref = rng.uniform(0, np.pi, size=m)
        turn = rng.choice([-1.0, 1.0], size=m) * rng.uniform(np.pi / 4, np.pi / 2, size=m)
        pref_b = np.where(curvature, pref + turn, rng.uniform(0, np.pi, size=m))
        psi = rng.uniform(0, 2 * np.pi, size=m)
        dx, dy = 0.5 * sig * np.cos(psi), 0.5 * sig * np.sin(psi)
        whole = gaussian_windows(size, cx, cy, sig)
        sub1 = gaussian_windows(size, cx - dx, cy - dy, 0.6 * sig)
        sub2 = gaussian_windows(size, cx + dx, cy + dy, 0.6 * sig)
        windows = np.stack([_pool(w, size) for w in (whole, sub1, sub2)])  # (3, P, m)
        hue_w = np.where(rng.random(m) < 0.4, rng.uniform(0.5, 1.0, size=m), 0.0)
        lum_w = rng.uniform(0.3, 0.8, size=m)
        return cls(
            units=u,
            unit_type=np.where(curvature, "curvature", "texture"),
            tuning_a=_tuning(pref, scale).astype(np.float32),
            tuning_b=_tuning(pref_b, scale).astype(np.float32),
            scale_mask=_scale_mask(scale).astype(np.float32),
            windows=windows.astype(np.float32),
            hue=rng.uniform(0, 2 * np.pi, size=m),
            on_off=rng.choice([-1.0, 1.0], size=m),
            weights=np.stack([np.ones(m), hue_w, lum_w], axis=1),
            full_window=whole.astype(np.float32),
        )

    def register(self, stage: LinearStage) -> None:
        for name in _CHANNELS:
            stage.add(f"v4_{name}", name, self.full_window)

    def _terms(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Raw quantities of every term, each ``(n, units)`` float64."""
        e = inputs.energy
        n, m = e.shape[0], self.units.size
        # pooled energy per channel and window: (n, channels, 3, m)
        pooled = np.einsum("ncp,kpu->ncku", e, self.windows, optimize=True).astype(np.float64)
        total = np.einsum("ncku,cu->nku", pooled, self.scale_mask)
        out = {
            "tuned_1": np.einsum("ncu,cu->nu", pooled[:, :, 1], self.tuning_a),
            "tuned_2": np.einsum("ncu,cu->nu", pooled[:, :, 2], self.tuning_b),
            "total_0": total[:, 0],
            "total_1": total[:, 1],
            "total_2": total[:, 2],
        }
        cooc = np.zeros((n, m))
        tex = np.flatnonzero(self.unit_type == "texture")
        for j in tex:
            a = np.tensordot(e, self.tuning_a[:, j], axes=([1], [0]))
            b = np.tensordot(e, self.tuning_b[:, j], axes=([1], [0]))
            cooc[:, j] = (a * b) @ self.windows[0, :, j]
        out["cooc"] = cooc
        lin = inputs.linear
        out["lum"], out["rg"], out["by"] = (lin[f"v4_{c}"].astype(np.float64) for c in _CHANNELS)
        return out

    def _features(self, t: dict[str, np.ndarray]) -> np.ndarray:
        """Shape, hue and luminance terms ``(n, units, 3)``."""
        c = self.c50
        n1 = t["tuned_1"] / (c["sub_1"] + t["total_1"])
        n2 = t["tuned_2"] / (c["sub_2"] + t["total_2"])
        curv = np.sqrt(n1 * n2)
        tex = np.sqrt(t["cooc"] / (c["tex"] + t["total_0"] ** 2))
        shape = np.where(self.unit_type == "curvature", curv, tex)
        chroma = t["rg"] ** 2 + t["by"] ** 2
        proj = t["rg"] * np.cos(self.hue) + t["by"] * np.sin(self.hue)
        hue = np.maximum(proj, 0.0) ** 2 / (c["hue"] + chroma)
        lum = np.maximum(self.on_off * t["lum"], 0.0)
        return np.stack([shape, hue, lum], axis=-1)

    def calibrate(self, inputs: Inputs) -> None:
        t = self._terms(inputs)

        def med(x: np.ndarray) -> np.ndarray:
            return np.maximum(np.median(x, axis=0), 1e-9)

        self.c50 = {
            "sub_1": 0.2 * med(t["total_1"]),
            "sub_2": 0.2 * med(t["total_2"]),
            "tex": 0.2 * med(t["total_0"] ** 2),
            "hue": 0.2 * med(t["rg"] ** 2 + t["by"] ** 2),
        }
        self.loc, self.scale = robust_scale(self._features(t))

    def drive(self, inputs: Inputs) -> np.ndarray:
        f = (self._features(self._terms(inputs)) - self.loc) / self.scale
        return (f * self.weights).sum(axis=-1)


@dataclass
class ITUnits(UnitModel):
    """Global, nonlinear features: a random sparse two-layer ReLU network per unit's RF.

    Inputs per unit: for each of 3 x 3 Gaussian sub-fields tiling its RF (spacing 0.5, width
    0.4 RF radius) the log luminance energy of the 8 orientation x scale channels, the mean
    red-green and blue-yellow, and the log luminance contrast energy (99 features, each
    standardised on natural images). A hidden layer of ``n_hidden`` ReLU features shared by
    all IT units (sparse Gaussian weights, 15 % connectivity; thresholds at the 80th
    percentile over natural images, so each feature is active for ~20 % of images); each unit
    sums 6 hidden features with log-normal weights, a quarter of them inhibitory.
    """

    area: ClassVar[str] = "IT"
    needs_energy: ClassVar[bool] = True

    n_hidden: int = 128
    windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    pooled_windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    w_hidden: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    w_out: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    energy_floor: np.ndarray | None = None
    contrast_floor: float | None = None
    loc: np.ndarray | None = None
    scale: np.ndarray | None = None
    hidden_threshold: np.ndarray | None = None

    _GRID: ClassVar[int] = 3

    @classmethod
    def build(
        cls, layout: ArrayLayout, size: int, rng: np.random.Generator, n_hidden: int = 128
    ) -> ITUnits:
        """Random IT units at the layout's IT RFs."""
        u = layout.units_of("IT")
        m = u.size
        cx, cy, sig = layout.rf_x[u], layout.rf_y[u], layout.rf_sigma[u]
        offsets = 0.5 * (np.arange(cls._GRID) - (cls._GRID - 1) / 2)
        wins = [
            gaussian_windows(size, cx + ox * sig, cy + oy * sig, 0.4 * sig)
            for oy in offsets
            for ox in offsets
        ]
        windows = np.stack(wins, axis=2).reshape(size * size, -1)  # (S*S, m * 9) unit-major
        n_feat = cls._GRID**2 * (N_ORI * len(WAVELENGTHS) + 3)
        mask = rng.random((n_feat, n_hidden)) < 0.15
        w_hidden = rng.normal(size=(n_feat, n_hidden)) * mask / np.sqrt(0.15 * n_feat)
        w_out = np.zeros((m, n_hidden))
        for j in range(m):
            pick = rng.choice(n_hidden, size=6, replace=False)
            sign = np.where(rng.random(6) < 0.25, -1.0, 1.0)
            w_out[j, pick] = sign * rng.lognormal(0.0, 0.5, size=6)
        return cls(
            units=u,
            unit_type=np.full(m, "global"),
            n_hidden=n_hidden,
            windows=windows.astype(np.float32),
            pooled_windows=_pool(windows, size).astype(np.float32),
            w_hidden=w_hidden,
            w_out=w_out,
        )

    def register(self, stage: LinearStage) -> None:
        for name in (*_CHANNELS, "lum2"):
            stage.add(f"it_{name}", name, self.windows)

    def _raw(self, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """Pooled energies ``(n, m, 9, C)`` and colour / contrast ``(n, m, 9, 3)``."""
        n, m, g = inputs.energy.shape[0], self.units.size, self._GRID**2
        # one 2-D product (a batched 3-D one is far slower when the BLAS threads compete)
        energy = inputs.energy.reshape(-1, inputs.energy.shape[-1]) @ self.pooled_windows
        energy = energy.reshape(n, -1, m, g).transpose(0, 2, 3, 1).astype(np.float64)
        lin = inputs.linear
        lum, lum2 = lin["it_lum"].astype(np.float64), lin["it_lum2"].astype(np.float64)
        contrast = np.maximum(lum2 - lum * lum, 0.0)
        other = np.stack([lin["it_rg"], lin["it_by"], contrast], axis=-1).reshape(n, m, g, 3)
        return energy, other.astype(np.float64)

    def _features(self, energy: np.ndarray, other: np.ndarray) -> np.ndarray:
        """Standardised input features ``(n, m, 99)`` from :meth:`_raw`."""
        other = other.copy()
        other[..., 2] = np.log(other[..., 2] + self.contrast_floor)
        f = np.concatenate([np.log(energy + self.energy_floor), other], axis=-1)
        f = f.reshape(f.shape[0], f.shape[1], -1)
        if self.loc is None:
            self.loc, self.scale = robust_scale(f)
        return (f - self.loc) / self.scale

    def calibrate(self, inputs: Inputs) -> None:
        energy, other = self._raw(inputs)
        # log floors: 5 % of the median energy per channel / of the median contrast energy
        self.energy_floor = 0.05 * np.maximum(np.median(energy, axis=(0, 1, 2)), 1e-12)
        self.contrast_floor = 0.05 * max(float(np.median(other[..., 2])), 1e-12)
        self.loc = None
        pre = _matmul(self._features(energy, other), self.w_hidden)
        self.hidden_threshold = np.percentile(pre.reshape(-1, self.n_hidden), 80, axis=0)

    def drive(self, inputs: Inputs) -> np.ndarray:
        pre = _matmul(self._features(*self._raw(inputs)), self.w_hidden)  # (n, m, hidden)
        hidden = np.maximum(pre - self.hidden_threshold, 0.0)
        return np.einsum("nuk,uk->nu", hidden, self.w_out)
