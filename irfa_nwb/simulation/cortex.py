"""A "virtual cortex": V1-, V4- and IT-like units that respond to RGB images.

Every unit computes a few raw image features inside its receptive field (RF), standardises
them with constants fixed once on a reference set of natural patches (so a unit's response to
an image never depends on which other images are shown), combines them, and passes the result
through a sigmoid into an expected spike count in the response window::

    rate = baseline + (max_rate - baseline) * sigmoid(gain * (z - threshold))
    expected count = rate * window

Areas
-----
V1
    Gabor-energy units: a quadrature pair of Gabor filters (luminance, or for some units a
    red-green / blue-yellow opponent channel) with a small Gaussian envelope; feature is
    ``log(even**2 + odd**2 + floor)``. A uniform image gives zero energy: the lowest drive
    (the floor acts as a contrast threshold), whatever lies outside the RF.
V4
    Larger Gaussian RFs pooling Gabor-energy maps (4 orientations x 2 spatial frequencies,
    computed by FFT over the whole image) with an orientation tuning (one preferred
    orientation, or two at a right angle: corner-like), plus for some units pooled colour.
IT
    Large, roughly central Gaussian RFs over global features: mean luminance and colour,
    contrast, coarse orientation energy, and low-spatial-frequency templates; a random signed
    combination per unit.

Units are grouped in arrays (electrode groups, ``"<area>_a<k>"``); the RF centres of an
array's units scatter around the array's centre with zero mean, so an array's true RF centre
is exactly the mean of its units' ``rf_x`` / ``rf_y``. Coordinates are fractions of the image
width (x, from the left) and height (y, from the top), pixel ``j`` sitting at ``(j + 0.5) / S``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from ..errors import InputError
from .images import natural_patches

AREAS: tuple[str, ...] = ("V1", "V4", "IT")

#: Default arrays per area (kept small so the demo fits a 2-core laptop).
DEFAULT_ARRAYS: dict[str, int] = {"V1": 4, "V4": 2, "IT": 2}

# per-area geometry, all in image fractions:
# (ring radius of array centres, SD of unit scatter around the array centre, RF sigma range)
_GEOMETRY: dict[str, tuple[float, float, tuple[float, float]]] = {
    "V1": (0.22, 0.025, (0.03, 0.05)),
    "V4": (0.15, 0.04, (0.07, 0.11)),
    "IT": (0.0, 0.03, (0.18, 0.28)),
}

_N_ORI = 4  # orientations of the energy maps
_WAVELENGTHS = (0.1, 0.2)  # energy-map wavelengths, fraction of the image side
_N_TEMPLATES = 3  # low-frequency templates per IT unit
# energy floor inside the logarithms: the energy of a grating of ~0.6 % luminance amplitude, so
# that units ignore faint (e.g. quantisation) noise and have a contrast threshold
_EPS = 1e-5
_N_REFERENCE = 256  # patches used to fix the standardisation constants
_CHUNK = 128  # images per FFT chunk
_BLOCK = 1024  # images per block of expected_counts


def _channels(images: np.ndarray) -> np.ndarray:
    """Luminance (grey = 0), red-green and blue-yellow planes: ``(n, 3, S, S)`` float32."""
    x = np.moveaxis(np.asarray(images), -1, 1).astype(np.float32) * np.float32(1 / 255)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    out = np.empty_like(x)
    out[:, 0] = np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b - 0.5
    np.subtract(r, g, out=out[:, 1])
    out[:, 2] = b - np.float32(0.5) * (r + g)
    return out


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as image fractions: ``(xx, yy)`` each ``(S, S)``."""
    c = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return xx, yy


def _pool_factor(size: int) -> int:
    """Block size that brings energy maps down to about 32 x 32 pixels."""
    return max(1, size // 32)


def _pool_windows(windows: np.ndarray, size: int) -> np.ndarray:
    """Sum ``(S*S, n)`` windows over the blocks of :func:`_pool_factor`; ``(s'*s', n)``."""
    f = _pool_factor(size)
    sp = size // f
    w = windows.reshape(size, size, -1)[: sp * f, : sp * f]
    return w.reshape(sp, f, sp, f, -1).sum(axis=(1, 3)).reshape(sp * sp, -1)


def _gaussians(size: int, cx: np.ndarray, cy: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Gaussian windows (each summing to 1) as columns: ``(S*S, n)`` float64."""
    xx, yy = _grid(size)
    d2 = (xx[..., None] - cx) ** 2 + (yy[..., None] - cy) ** 2
    g = np.exp(-0.5 * d2 / sigma**2).reshape(size * size, -1)
    return g / g.sum(axis=0, keepdims=True)


def _gabor_pairs(
    size: int,
    cx: np.ndarray,
    cy: np.ndarray,
    sigma: np.ndarray,
    wavelength: np.ndarray,
    theta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Even and odd Gabor filters, ``(S*S, n)`` each; zero mean, envelope summing to 1."""
    xx, yy = _grid(size)
    dx, dy = xx[..., None] - cx, yy[..., None] - cy
    env = np.exp(-0.5 * (dx**2 + dy**2) / sigma**2).reshape(size * size, -1)
    env /= env.sum(axis=0, keepdims=True)
    phase = (2 * np.pi / wavelength) * (dx * np.cos(theta) + dy * np.sin(theta))
    phase = phase.reshape(size * size, -1)
    even, odd = env * np.cos(phase), env * np.sin(phase)
    # remove the DC response so that a uniform image gives exactly zero
    even -= env * (even.sum(axis=0, keepdims=True) / env.sum(axis=0, keepdims=True))
    odd -= env * (odd.sum(axis=0, keepdims=True) / env.sum(axis=0, keepdims=True))
    return even.astype(np.float32), odd.astype(np.float32)


def _block_mean(x: np.ndarray, f: int) -> np.ndarray:
    """Average the last two axes over ``f x f`` blocks (trailing rows/columns dropped)."""
    if f == 1:
        return x
    h, w = x.shape[-2] // f, x.shape[-1] // f
    x = x[..., : h * f, : w * f]
    return x.reshape(*x.shape[:-2], h, f, w, f).mean(axis=(-3, -1))


@dataclass
class _EnergyBank:
    """Complex Gabor kernels (orientations x wavelengths) for FFT energy maps.

    Each wavelength is filtered at the coarsest resolution that still gives it about 6 pixels
    per cycle (a block average of the image), then the energy maps are block-averaged to the
    common pooled resolution ``S // _pool_factor(S)``: the maps only feed large pooling
    windows (V4, IT), so nothing that matters is lost and most of the work is saved.
    """

    size: int
    levels: list[tuple[int, int, np.ndarray]]  # (downsample d, FFT size P, kernels (O,P,P))

    @classmethod
    def build(cls, size: int) -> _EnergyBank:
        pool = _pool_factor(size)
        levels = []
        for w in _WAVELENGTHS:
            lam_full = max(3.0, w * size)
            d = max(
                k for k in range(1, pool + 1) if pool % k == 0 and k <= lam_full / 6.0 or k == 1
            )
            lam = lam_full / d
            sig = 0.45 * lam
            radius = int(np.ceil(3 * sig))
            n_pix = size // d
            # circular convolution is exact on the image once the padding exceeds the radius
            pad = scipy.fft.next_fast_len(n_pix + radius + 1)
            off = np.fft.fftfreq(pad, 1.0 / pad)  # signed pixel offsets 0, 1, ..., -1
            yy, xx = np.meshgrid(off, off, indexing="ij")
            env = np.exp(-0.5 * (xx**2 + yy**2) / sig**2)
            env /= env.sum()
            kernels = []
            for k in range(_N_ORI):
                th = np.pi * k / _N_ORI
                carrier = np.exp(1j * (2 * np.pi / lam) * (xx * np.cos(th) + yy * np.sin(th)))
                kern = env * carrier
                kern -= env * kern.sum()  # zero DC (env sums to 1)
                kernels.append(kern)
            kernels_f = scipy.fft.fft2(np.stack(kernels)).astype(np.complex64)
            levels.append((d, pad, kernels_f))
        return cls(size=size, levels=levels)

    def energy(self, lum: np.ndarray) -> np.ndarray:
        """Energy maps of luminance planes ``(n, S, S)``: ``(n, C, s', s')`` float32."""
        s = self.size
        pool = _pool_factor(s)
        sp = s // pool
        n_ch = _N_ORI * len(self.levels)
        out = np.empty((lum.shape[0], n_ch, sp, sp), dtype=np.float32)
        for start in range(0, lum.shape[0], _CHUNK):
            block = lum[start : start + _CHUNK]
            for j, (d, pad, kernels_f) in enumerate(self.levels):
                img = _block_mean(block[:, : sp * pool, : sp * pool], d)
                m = img.shape[-1]
                padded = np.zeros((img.shape[0], pad, pad), dtype=np.float32)
                padded[:, :m, :m] = img
                f = scipy.fft.fft2(padded, workers=-1)
                resp = scipy.fft.ifft2(f[:, None] * kernels_f[None], workers=-1)[..., :m, :m]
                e = _block_mean(resp.real**2 + resp.imag**2, pool // d)
                out[start : start + block.shape[0], j * _N_ORI : (j + 1) * _N_ORI] = e
        return out


@dataclass
class VirtualCortex:
    """Ground-truth model of V1/V4/IT units responding to RGB images.

    Build one with :func:`make_cortex`; call :meth:`expected_counts` on images.

    Attributes
    ----------
    image_size : int
        Side of the square images the cortex sees.
    window : float
        Response window length in seconds (counts are spikes in ``[0, window)`` after onset).
    area, electrode_group : numpy.ndarray of str
        Per unit.
    rf_x, rf_y, rf_sigma : numpy.ndarray of float
        True RF centre and Gaussian RF radius per unit, image fractions.
    array_names : list of str
        Array (electrode group) names in unit order.
    array_rf_x, array_rf_y : numpy.ndarray of float
        True RF centre of each array (exactly the mean of its units' centres).
    baseline_rate, max_rate : numpy.ndarray of float
        Per-unit rates in Hz.
    """

    image_size: int
    window: float
    area: np.ndarray
    electrode_group: np.ndarray
    rf_x: np.ndarray
    rf_y: np.ndarray
    rf_sigma: np.ndarray
    array_names: list[str]
    array_rf_x: np.ndarray
    array_rf_y: np.ndarray
    baseline_rate: np.ndarray
    max_rate: np.ndarray
    gain: np.ndarray
    threshold: np.ndarray
    params: dict = field(default_factory=dict, repr=False)

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.area.size)

    # -- raw features ------------------------------------------------------------------
    def _features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Raw per-unit features, one ``(n, units_in_area, K)`` array per area."""
        images = np.asarray(images)
        s = self.image_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise InputError(f"images must have shape (n, {s}, {s}, 3), got {tuple(images.shape)}")
        n = images.shape[0]
        ch = _channels(images).reshape(n, 3, s * s)
        planes = [ch[:, 0], ch[:, 1], ch[:, 2], ch[:, 0] ** 2]
        mats, slots = self._linear_stage()
        lin = [planes[c] @ mats[c] if mats[c].shape[1] else None for c in range(4)]

        def get(key: str) -> np.ndarray:
            c, a, b = slots[key]
            return lin[c][:, a:b]

        p = self.params
        out: dict[str, np.ndarray] = {}
        if "V1" in p:
            v1 = p["V1"]
            energy = np.empty((n, v1["channel"].size), dtype=np.float32)
            local = np.empty_like(energy)
            for c in range(3):
                idx = np.flatnonzero(v1["channel"] == c)
                if idx.size:
                    energy[:, idx] = get(f"v1_even_{c}") ** 2 + get(f"v1_odd_{c}") ** 2
                    local[:, idx] = get(f"v1_mean_{c}")
            out["V1"] = np.stack([np.log(energy + _EPS), local], axis=-1)
        maps = None
        if "V4" in p or "IT" in p:
            maps = p["bank"].energy(planes[0].reshape(n, s, s))
            maps = maps.reshape(n, maps.shape[1], -1)
        if "V4" in p:
            v4 = p["V4"]
            pooled = np.einsum("ncp,pu->ncu", maps, v4["window_pooled"], optimize=True)
            shape = np.einsum("ncu,cu->nu", pooled, v4["tuning"])
            colour = get("v4_rg") + get("v4_by")
            out["V4"] = np.stack([np.log(shape + _EPS), colour, get("v4_lum")], axis=-1)
        if "IT" in p:
            it = p["IT"]
            mean = [get(f"it_mean_{c}") for c in range(3)]
            contrast = np.log(np.maximum(get("it_second") - mean[0] ** 2, 0.0) + 1e-4)
            coarse = maps[:, _N_ORI:]  # the long-wavelength maps
            ori = np.einsum("ncp,pu->ncu", coarse, it["window_pooled"], optimize=True)
            ori = np.log(ori + _EPS)
            templ = get("it_templ").reshape(n, _N_TEMPLATES, -1)
            feats = [
                np.stack(mean, axis=-1),
                contrast[..., None],
                ori.transpose(0, 2, 1),
                templ.transpose(0, 2, 1),
            ]
            out["IT"] = np.concatenate(feats, axis=-1)
        return out

    def _linear_stage(self) -> tuple[list[np.ndarray], dict[str, tuple[int, int, int]]]:
        """All linear filters, stacked per input plane (lum, rg, by, lum**2), built once.

        One matrix product per plane is much faster than many thin ones.
        """
        if "linear" in self.params:
            return self.params["linear"]
        s2 = self.image_size**2
        cols: list[list[np.ndarray]] = [[], [], [], []]
        slots: dict[str, tuple[int, int, int]] = {}

        def add(key: str, plane: int, mat: np.ndarray) -> None:
            start = sum(m.shape[1] for m in cols[plane])
            cols[plane].append(np.asarray(mat, dtype=np.float32).reshape(s2, -1))
            slots[key] = (plane, start, start + cols[plane][-1].shape[1])

        p = self.params
        if "V1" in p:
            v1 = p["V1"]
            for c in range(3):
                idx = np.flatnonzero(v1["channel"] == c)
                if idx.size:
                    add(f"v1_even_{c}", c, v1["even"][:, idx])
                    add(f"v1_odd_{c}", c, v1["odd"][:, idx])
                    add(f"v1_mean_{c}", c, v1["mean_window"][:, idx])
        if "V4" in p:
            v4 = p["V4"]
            add("v4_rg", 1, v4["window"] * v4["colour"][0])
            add("v4_by", 2, v4["window"] * v4["colour"][1])
            add("v4_lum", 0, v4["window"])
        if "IT" in p:
            it = p["IT"]
            for c in range(3):
                add(f"it_mean_{c}", c, it["window"])
            add("it_second", 3, it["window"])
            add("it_templ", 0, it["templates"].reshape(s2, -1))
        mats = [
            np.ascontiguousarray(np.concatenate(c, axis=1)) if c else np.zeros((s2, 0), np.float32)
            for c in cols
        ]
        self.params["linear"] = (mats, slots)
        return mats, slots

    def _drive(self, images: np.ndarray) -> np.ndarray:
        """Standardised drive ``z`` per unit, ``(n, units)`` float64."""
        feats = self._features(images)
        n = np.asarray(images).shape[0]
        z = np.empty((n, self.n_units))
        for name, f in feats.items():
            prm = self.params[name]
            comb = (((f - prm["loc"]) / prm["scale"]) * prm["weights"]).sum(axis=-1)
            z[:, prm["units"]] = (comb - prm["final_loc"]) / prm["final_scale"]
        return z

    def expected_counts(self, images: np.ndarray) -> np.ndarray:
        """Expected spike counts in the response window.

        Parameters
        ----------
        images : numpy.ndarray
            ``(n, S, S, 3)`` uint8 RGB images, ``S == image_size``.

        Returns
        -------
        numpy.ndarray
            ``(n, n_units)`` float64 expected counts (noise-free responses).
        """
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[0] > _BLOCK:  # bound the working memory
            return np.concatenate(
                [
                    self.expected_counts(images[i : i + _BLOCK])
                    for i in range(0, images.shape[0], _BLOCK)
                ]
            )
        z = self._drive(images)
        act = 1.0 / (1.0 + np.exp(-self.gain * (z - self.threshold)))
        rate = self.baseline_rate + (self.max_rate - self.baseline_rate) * act
        return rate * self.window

    def sample_counts(
        self,
        expected: np.ndarray,
        rng: np.random.Generator,
        *,
        noise: str = "poisson",
        fano: float = 1.0,
    ) -> np.ndarray:
        """Draw noisy responses around ``expected`` counts.

        Parameters
        ----------
        expected : numpy.ndarray
            Expected counts (any shape).
        rng : numpy.random.Generator
            Source of randomness.
        noise : {"poisson", "none"}
            ``"poisson"``: integer spike counts with variance ``fano * expected`` (Poisson for
            ``fano == 1``, gamma-Poisson mixture for ``fano > 1``). ``"none"``: the expected
            counts themselves.
        fano : float, default 1.0
            Fano factor (variance / mean), >= 1.

        Returns
        -------
        numpy.ndarray
            Float64 array shaped like ``expected``.
        """
        return sample_counts(expected, rng, noise=noise, fano=fano)


def sample_counts(
    expected: np.ndarray, rng: np.random.Generator, *, noise: str = "poisson", fano: float = 1.0
) -> np.ndarray:
    """Noise model of the virtual cortex; see :meth:`VirtualCortex.sample_counts`."""
    expected = np.asarray(expected, dtype=np.float64)
    if noise == "none":
        return expected.copy()
    if noise != "poisson":
        raise InputError(f"noise must be 'poisson' or 'none', got {noise!r}")
    if not fano >= 1.0:
        raise InputError(f"fano must be >= 1, got {fano}")
    lam = expected
    if fano > 1.0:
        lam = rng.gamma(expected / (fano - 1.0), fano - 1.0)
    return rng.poisson(lam).astype(np.float64)


def _array_centres(area: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Known per-array RF centres ``(n, 2)`` (x, y) spread over the visual field."""
    radius = _GEOMETRY[area][0]
    if area == "IT":
        return 0.5 + np.clip(rng.normal(0.0, 0.04, size=(n, 2)), -0.08, 0.08)
    start = rng.uniform(0, 2 * np.pi)
    ang = start + 2 * np.pi * np.arange(n) / max(n, 1)
    return 0.5 + radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def make_cortex(
    *,
    image_size: int = 64,
    arrays: Mapping[str, int] | None = None,
    units_per_array: int = 24,
    baseline_rate: float = 10.0,
    max_rate: float = 100.0,
    window: float = 0.2,
    rng: np.random.Generator | None = None,
    seed: int = 0,
) -> VirtualCortex:
    """Build a random virtual cortex.

    Parameters
    ----------
    image_size : int, default 64
        Side of the (square) images in pixels.
    arrays : mapping of str to int, optional
        Number of arrays per area, areas among ``"V1"``, ``"V4"``, ``"IT"``
        (default :data:`DEFAULT_ARRAYS`: 4 V1, 2 V4, 2 IT).
    units_per_array : int, default 24
        Units (channels) per array.
    baseline_rate, max_rate : float
        Mean spontaneous and maximal firing rate in Hz (each unit varies around them).
    window : float, default 0.2
        Response window in seconds.
    rng : numpy.random.Generator, optional
        Source of randomness (default ``np.random.default_rng(seed)``).
    seed : int, default 0
        Seed used when ``rng`` is not given.

    Returns
    -------
    VirtualCortex
    """
    arrays = dict(DEFAULT_ARRAYS if arrays is None else arrays)
    unknown = set(arrays) - set(AREAS)
    if unknown:
        raise InputError(f"unknown area(s) {sorted(unknown)}; choose among {list(AREAS)}")
    if any(int(v) < 0 for v in arrays.values()) or sum(arrays.values()) < 1:
        raise InputError(f"arrays must hold non-negative counts, at least one array: {arrays}")
    if units_per_array < 1:
        raise InputError(f"units_per_array must be >= 1, got {units_per_array}")
    if image_size < 8:
        raise InputError(f"image_size must be >= 8 pixels, got {image_size}")
    if not 0 <= baseline_rate < max_rate:
        raise InputError("need 0 <= baseline_rate < max_rate")
    if not window > 0:
        raise InputError(f"window must be > 0, got {window}")
    rng = np.random.default_rng(seed) if rng is None else rng
    s = int(image_size)
    m = int(units_per_array)

    area, group, rfx, rfy, rfs = [], [], [], [], []
    names, acx, acy = [], [], []
    for a in AREAS:  # fixed area order: V1, V4, IT
        n_arr = int(arrays.get(a, 0))
        if n_arr == 0:
            continue
        _, spread, (smin, smax) = _GEOMETRY[a]
        for k, (cx, cy) in enumerate(_array_centres(a, n_arr, rng)):
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
    area_a = np.array(area)
    rf_x, rf_y, rf_sigma = np.concatenate(rfx), np.concatenate(rfy), np.concatenate(rfs)
    n_units = area_a.size
    # keep at least one pixel of RF radius at small image sizes
    rf_sigma = np.maximum(rf_sigma, 1.0 / s)

    params: dict = {}
    if "V1" in arrays and arrays["V1"]:
        u = np.flatnonzero(area_a == "V1")
        sig = rf_sigma[u]
        lam = np.maximum(sig * rng.uniform(2.0, 3.0, size=u.size), 3.0 / s)
        theta = rng.uniform(0, np.pi, size=u.size)
        channel = rng.choice(3, size=u.size, p=[0.7, 0.15, 0.15])
        even, odd = _gabor_pairs(s, rf_x[u], rf_y[u], sig, lam, theta)
        # ON / OFF sensitivity to the mean of the unit's channel around the RF centre
        on_off = rng.choice([-1.0, 1.0], size=u.size) * rng.uniform(0.5, 1.0, size=u.size)
        params["V1"] = {
            "units": u,
            "even": even,
            "odd": odd,
            "mean_window": _gaussians(s, rf_x[u], rf_y[u], 1.5 * sig).astype(np.float32),
            "channel": channel,
            "theta": theta,
            "wavelength": lam,
            "weights": np.stack([np.ones(u.size), on_off], axis=1),
        }
    if any(arrays.get(a, 0) for a in ("V4", "IT")):
        params["bank"] = _EnergyBank.build(s)
    if arrays.get("V4", 0):
        u = np.flatnonzero(area_a == "V4")
        n_ch = _N_ORI * len(_WAVELENGTHS)
        pref = rng.uniform(0, np.pi, size=u.size)
        corner = rng.random(u.size) < 0.5
        scale = rng.integers(0, len(_WAVELENGTHS), size=u.size)
        ori = np.pi * np.arange(_N_ORI) / _N_ORI
        tun = np.exp(2.0 * (np.cos(2 * (ori[:, None] - pref)) - 1))
        tun += corner * np.exp(2.0 * (np.cos(2 * (ori[:, None] - pref - np.pi / 2)) - 1))
        tuning = np.zeros((n_ch, u.size))
        for j in range(u.size):
            tuning[scale[j] * _N_ORI : (scale[j] + 1) * _N_ORI, j] = tun[:, j]
        tuning /= tuning.sum(axis=0, keepdims=True)
        colour_dir = rng.normal(size=(2, u.size))
        colour_dir /= np.linalg.norm(colour_dir, axis=0, keepdims=True)
        colour_w = np.where(rng.random(u.size) < 0.4, rng.uniform(0.5, 1.0, u.size), 0.0)
        win = _gaussians(s, rf_x[u], rf_y[u], rf_sigma[u])
        params["V4"] = {
            "units": u,
            "window": win.astype(np.float32),
            "window_pooled": _pool_windows(win, s).astype(np.float32),
            "tuning": tuning.astype(np.float32),
            "colour": colour_dir.astype(np.float32),
            "weights": np.stack(
                [
                    np.ones(u.size),
                    colour_w,
                    rng.choice([-1.0, 1.0], size=u.size) * rng.uniform(0.3, 0.8, size=u.size),
                ],
                axis=1,
            ),
        }
    if arrays.get("IT", 0):
        u = np.flatnonzero(area_a == "IT")
        win = _gaussians(s, rf_x[u], rf_y[u], rf_sigma[u])
        # low-spatial-frequency templates: smooth random patterns (sum of a few cosines)
        xx, yy = _grid(s)
        templates = np.zeros((s * s, _N_TEMPLATES, u.size))
        for t in range(_N_TEMPLATES):
            fx, fy = rng.integers(-2, 3, size=(2, u.size))
            ph = rng.uniform(0, 2 * np.pi, size=u.size)
            pat = np.cos(2 * np.pi * (fx * xx[..., None] + fy * yy[..., None]) + ph)
            templates[:, t] = pat.reshape(s * s, -1) * win
        n_feat = 3 + 1 + _N_ORI + _N_TEMPLATES
        weights = rng.normal(size=(u.size, n_feat)) * (rng.random((u.size, n_feat)) < 0.6)
        weights[np.arange(u.size), rng.integers(0, n_feat, size=u.size)] += 1.0
        params["IT"] = {
            "units": u,
            "window": win.astype(np.float32),
            "window_pooled": _pool_windows(win, s).astype(np.float32),
            "templates": templates.astype(np.float32),
            "weights": weights,
        }

    cortex = VirtualCortex(
        image_size=s,
        window=float(window),
        area=area_a,
        electrode_group=np.array(group),
        rf_x=rf_x,
        rf_y=rf_y,
        rf_sigma=rf_sigma,
        array_names=names,
        array_rf_x=np.array(acx),
        array_rf_y=np.array(acy),
        baseline_rate=baseline_rate * rng.uniform(0.5, 1.5, size=n_units),
        max_rate=max_rate * rng.uniform(0.7, 1.3, size=n_units),
        gain=rng.uniform(1.0, 2.0, size=n_units),
        threshold=rng.uniform(0.0, 1.0, size=n_units),
        params=params,
    )
    _calibrate(cortex, natural_patches(_N_REFERENCE, s, rng=rng))
    return cortex


def _robust_scale(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    lo, med, hi = np.percentile(x, [16, 50, 84], axis=axis)
    return med, np.maximum((hi - lo) / 2.0, 1e-6)


def _calibrate(cortex: VirtualCortex, reference: np.ndarray) -> None:
    """Fix each unit's standardisation constants on reference natural patches."""
    feats = cortex._features(reference)
    for name, f in feats.items():
        prm = cortex.params[name]
        prm["loc"], prm["scale"] = _robust_scale(f)
        comb = (((f - prm["loc"]) / prm["scale"]) * prm["weights"]).sum(axis=-1)
        prm["final_loc"], prm["final_scale"] = _robust_scale(comb)
