"""A "virtual cortex": V1-, V4- and IT-like units on arrays that respond to RGB images.

Each area's unit model (:mod:`.units`) turns an image into a non-negative drive per unit; the
cortex standardises it with constants fixed once on reference natural patches and passes it
through a sigmoid into an expected spike count in the response window::

    z = (drive - loc) / scale
    rate = baseline + (max_rate - baseline) * sigmoid(gain * (z - threshold))
    expected count = rate * window

Spike counts vary around it by a modulated Poisson process with a gain shared within each
array (:mod:`.noise`). Arrays and RF geometry come from :mod:`.layout`, filters from
:mod:`.filters`. A unit's response to an image never depends on which other images are shown,
and everything is fixed by the seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .filters import EnergyBank, LinearStage, colour_planes
from .images import as_generator, natural_patches
from .layout import AREAS, DEFAULT_ARRAYS, ArrayLayout, make_layout
from .noise import modulated_poisson, sample_counts
from .units import Inputs, ITUnits, UnitModel, V1Units, V4Units, robust_scale

__all__ = ["AREAS", "DEFAULT_ARRAYS", "VirtualCortex", "make_cortex", "sample_counts"]

_N_REFERENCE = 256  # patches used to fix the calibration constants
_BLOCK = 1024  # images per block of expected_counts (bounds the working memory)
_POORLY_TUNED = 0.15  # fraction of units with a shallow rate modulation
_MODELS: dict[str, type[UnitModel]] = {"V1": V1Units, "V4": V4Units, "IT": ITUnits}


@dataclass
class VirtualCortex:
    """Ground-truth model of V1/V4/IT units responding to RGB images.

    Build one with :func:`make_cortex`; call :meth:`expected_counts` on images and
    :meth:`sample_counts` on expected counts.

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
    unit_type : numpy.ndarray of str
        Per unit: ``"simple"`` / ``"complex"`` (V1), ``"curvature"`` / ``"texture"`` (V4),
        ``"global"`` (IT).
    well_tuned : numpy.ndarray of bool
        False for the poorly tuned units (shallow rate modulation).
    baseline_rate, max_rate, gain, threshold : numpy.ndarray of float
        Per-unit output nonlinearity (rates in Hz).
    fano : numpy.ndarray of float
        Per-unit Fano factor of the counts over natural images (variance / mean pooled over
        stimuli and repeats).
    gain_variance : numpy.ndarray of float
        Per-unit variance of the trial gain (count variance ``mu + gain_variance * mu**2``).
    shared_gain : float
        Fraction of the log-gain variance shared by the units of an array.
    models : dict of str to UnitModel
        The unit model of every area present.
    """

    image_size: int
    window: float
    layout: ArrayLayout = field(repr=False)
    models: dict[str, UnitModel] = field(repr=False)
    baseline_rate: np.ndarray
    max_rate: np.ndarray
    gain: np.ndarray
    threshold: np.ndarray
    well_tuned: np.ndarray
    shared_gain: float = 0.5
    fano: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gain_variance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    drive_loc: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    drive_scale: np.ndarray = field(default_factory=lambda: np.ones(0), repr=False)
    stage: LinearStage | None = field(default=None, repr=False)
    bank: EnergyBank | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.stage is None:
            self.stage = LinearStage(self.image_size)
            for model in self.models.values():
                model.register(self.stage)
        if self.bank is None and any(m.needs_energy for m in self.models.values()):
            self.bank = EnergyBank.build(self.image_size)

    # -- geometry (from the layout) -------------------------------------------------------
    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.layout.area.size)

    @property
    def area(self) -> np.ndarray:
        """Brain area per unit."""
        return self.layout.area

    @property
    def electrode_group(self) -> np.ndarray:
        """Array name per unit."""
        return self.layout.electrode_group

    @property
    def rf_x(self) -> np.ndarray:
        """True RF centre x per unit (fraction of the width, from the left)."""
        return self.layout.rf_x

    @property
    def rf_y(self) -> np.ndarray:
        """True RF centre y per unit (fraction of the height, from the top)."""
        return self.layout.rf_y

    @property
    def rf_sigma(self) -> np.ndarray:
        """Gaussian RF radius per unit (image fractions)."""
        return self.layout.rf_sigma

    @property
    def array_names(self) -> list[str]:
        """Array names in unit order."""
        return self.layout.array_names

    @property
    def array_rf_x(self) -> np.ndarray:
        """True RF centre x of each array."""
        return self.layout.array_rf_x

    @property
    def array_rf_y(self) -> np.ndarray:
        """True RF centre y of each array."""
        return self.layout.array_rf_y

    @property
    def unit_type(self) -> np.ndarray:
        """Model type per unit (see the class attributes)."""
        out = np.empty(self.n_units, dtype=object)
        for model in self.models.values():
            out[model.units] = model.unit_type
        return out.astype(str)

    # -- responses ------------------------------------------------------------------------
    def _inputs(self, images: np.ndarray) -> Inputs:
        s = self.image_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise InputError(f"images must have shape (n, {s}, {s}, 3), got {tuple(images.shape)}")
        planes = colour_planes(images)
        energy = None if self.bank is None else self.bank.energy(planes[:, 0])
        flat = planes.reshape(planes.shape[0], 3, s * s)
        return Inputs(linear=self.stage.apply(flat), energy=energy)

    def _raw_drive(self, images: np.ndarray) -> np.ndarray:
        inputs = self._inputs(images)
        out = np.empty((images.shape[0], self.n_units))
        for model in self.models.values():
            out[:, model.units] = model.drive(inputs)
        return out

    def drive(self, images: np.ndarray) -> np.ndarray:
        """Standardised drive ``z`` of every unit before the output nonlinearity.

        Parameters
        ----------
        images : numpy.ndarray
            ``(n, S, S, 3)`` uint8 RGB images, ``S == image_size``.

        Returns
        -------
        numpy.ndarray
            ``(n, n_units)`` float64; about zero median and unit spread over natural images.
        """
        images = np.asarray(images)
        blocks = [
            (self._raw_drive(images[i : i + _BLOCK]) - self.drive_loc) / self.drive_scale
            for i in range(0, max(images.shape[0], 1), _BLOCK)
        ]
        return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]

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
        z = self.drive(images)
        act = 1.0 / (1.0 + np.exp(-self.gain * (z - self.threshold)))
        rate = self.baseline_rate + (self.max_rate - self.baseline_rate) * act
        return rate * self.window

    def sample_counts(
        self,
        expected: np.ndarray,
        rng: np.random.Generator,
        *,
        noise: str = "poisson",
        fano: float | None = None,
    ) -> np.ndarray:
        """Draw noisy responses around ``expected`` counts, one trial per leading index.

        Parameters
        ----------
        expected : numpy.ndarray
            ``(..., n_units)`` expected counts.
        rng : numpy.random.Generator
            Source of randomness.
        noise : {"poisson", "none"}
            ``"poisson"``: integer spike counts; ``"none"``: the expected counts themselves.
        fano : float, optional
            None (default): the cortex's modulated Poisson model (per-unit Fano factors
            :attr:`fano`, trial gain shared within arrays, see :mod:`.noise`). A number
            >= 1: independent Poisson (1) or gamma-Poisson counts with that Fano factor for
            every unit and stimulus.

        Returns
        -------
        numpy.ndarray
            Float64 array shaped like ``expected``.
        """
        if fano is not None or noise != "poisson":
            return sample_counts(expected, rng, noise=noise, fano=1.0 if fano is None else fano)
        return modulated_poisson(
            expected,
            rng,
            gain_variance=self.gain_variance,
            groups=self.layout.array_index,
            shared=self.shared_gain,
        )


def _check_arguments(
    arrays: Mapping[str, int] | None,
    units_per_array: int,
    image_size: int,
    baseline_rate: float,
    max_rate: float,
    window: float,
    fano_range: tuple[float, float],
    shared_gain: float,
) -> dict[str, int]:
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
    lo, hi = fano_range
    if not 1.0 <= lo <= hi:
        raise InputError(f"fano_range must be (low, high) with 1 <= low <= high, got {fano_range}")
    if not 0.0 <= shared_gain <= 1.0:
        raise InputError(f"shared_gain must lie in [0, 1], got {shared_gain}")
    return {a: int(v) for a, v in arrays.items() if int(v) > 0}


def _output_stage(
    n_units: int, baseline_rate: float, max_rate: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per-unit rates and sigmoid: log-normal spontaneous / peak rates, some poor tuning.

    Spontaneous rates scatter log-normally around ``baseline_rate`` (SD 0.6 in log units,
    within 0.1-4 x), peak rates around ``max_rate`` (SD 0.3, within 0.4-2 x, at least 10 Hz
    above the unit's spontaneous rate). The sigmoid's threshold (1.5-2.5 standardised drive
    units) makes responses to natural images sparse. A fraction :data:`_POORLY_TUNED` of the
    units is poorly tuned: their rate rises only 10-30 % of the way to the peak rate.
    """
    base = baseline_rate * np.clip(rng.lognormal(0.0, 0.6, size=n_units), 0.1, 4.0)
    peak = np.maximum(max_rate * np.clip(rng.lognormal(0.0, 0.3, size=n_units), 0.4, 2.0),
                      base + 10.0)
    well_tuned = rng.random(n_units) >= _POORLY_TUNED
    depth = np.where(well_tuned, 1.0, rng.uniform(0.1, 0.3, size=n_units))
    return {
        "baseline_rate": base,
        "max_rate": base + depth * (peak - base),
        "gain": rng.uniform(1.0, 2.5, size=n_units),
        "threshold": rng.uniform(1.5, 2.5, size=n_units),
        "well_tuned": well_tuned,
    }


def _calibrate(cortex: VirtualCortex, reference: np.ndarray) -> None:
    """Fix the unit models' constants and the drive standardisation on reference patches."""
    inputs = cortex._inputs(reference)
    for model in cortex.models.values():
        model.calibrate(inputs)
    cortex.drive_loc, cortex.drive_scale = robust_scale(cortex._raw_drive(reference))


def _calibrate_noise(
    cortex: VirtualCortex,
    reference: np.ndarray,
    fano_range: tuple[float, float],
    rng: np.random.Generator,
) -> None:
    """Per-unit gain variance giving each unit its Fano factor over natural images.

    With counts of variance ``mu + s2 * mu**2``, the Fano factor pooled over stimuli is
    ``1 + s2 * mean(mu**2) / mean(mu)``; ``s2`` is solved on the reference patches.
    """
    mu = cortex.expected_counts(reference)
    cortex.fano = rng.uniform(*fano_range, size=cortex.n_units)
    cortex.gain_variance = (cortex.fano - 1.0) * mu.mean(axis=0) / (mu**2).mean(axis=0)


def make_cortex(
    *,
    image_size: int = 64,
    arrays: Mapping[str, int] | None = None,
    units_per_array: int = 24,
    baseline_rate: float = 10.0,
    max_rate: float = 100.0,
    window: float = 0.2,
    fano_range: tuple[float, float] = (1.0, 1.5),
    shared_gain: float = 0.5,
    random_state: int | np.random.Generator | None = 0,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
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
        Typical (median) spontaneous and peak firing rate in Hz; units scatter log-normally
        around them.
    window : float, default 0.2
        Response window in seconds.
    fano_range : (float, float), default (1.0, 1.5)
        Per-unit Fano factors over natural images are drawn uniformly from this range.
    shared_gain : float, default 0.5
        Fraction of each unit's trial-gain (log) variance shared by its array.
    random_state : int, numpy.random.Generator or None, default 0
        Seed, or the generator to draw from.
    rng, seed : deprecated
        Old names of ``random_state``.

    Returns
    -------
    VirtualCortex
    """
    arrays = _check_arguments(
        arrays, units_per_array, image_size, baseline_rate, max_rate, window, fano_range,
        shared_gain,
    )
    rng = as_generator(random_state, rng=rng, seed=seed)
    s = int(image_size)
    layout = make_layout(arrays, units_per_array, s, rng)
    models = {a: _MODELS[a].build(layout, s, rng) for a in AREAS if a in arrays}
    cortex = VirtualCortex(
        image_size=s,
        window=float(window),
        layout=layout,
        models=models,
        shared_gain=float(shared_gain),
        **_output_stage(layout.area.size, baseline_rate, max_rate, rng),
    )
    reference = natural_patches(_N_REFERENCE, s, random_state=rng)
    _calibrate(cortex, reference)
    _calibrate_noise(cortex, reference, fano_range, rng)
    return cortex
