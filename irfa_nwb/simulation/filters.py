"""Image filters of the virtual cortex: colour planes, Gaussian windows, Gabor pairs, FFT
energy maps, and a stacked linear stage that applies many filters in one product per plane.

Coordinates are fractions of the image width (x, from the left) and height (y, from the top);
pixel ``j`` sits at ``(j + 0.5) / S``. Filters are stored as columns of ``(S*S, k)`` matrices
so that ``planes @ filters`` gives every unit's linear response at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft

__all__ = [
    "N_ORI",
    "PLANES",
    "WAVELENGTHS",
    "EnergyBank",
    "LinearStage",
    "block_mean",
    "colour_planes",
    "gabor_pairs",
    "gaussian_windows",
    "pixel_grid",
    "pool_factor",
    "pool_windows",
]

N_ORI = 4  # orientations of the energy maps (0, 45, 90, 135 degrees)
WAVELENGTHS = (0.1, 0.2)  # energy-map wavelengths, fraction of the image side
_CHUNK = 128  # images per FFT chunk
# window values below this are set to zero: they are irrelevant, and as float32 subnormals
# they would slow every matrix product down by orders of magnitude
_TINY = 1e-12

#: Input planes of the linear stage: luminance (grey = 0), red-green, blue-yellow, and their
#: squares (for local contrast energy = windowed second moment minus squared mean).
PLANES: tuple[str, ...] = ("lum", "rg", "by", "lum2", "rg2", "by2")


def colour_planes(images: np.ndarray) -> np.ndarray:
    """Luminance (grey = 0), red-green and blue-yellow planes: ``(n, 3, S, S)`` float32.

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, S, S, 3)`` RGB images with values in 0..255.
    """
    x = np.moveaxis(np.asarray(images), -1, 1).astype(np.float32) * np.float32(1 / 255)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    out = np.empty_like(x)
    out[:, 0] = np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b - 0.5
    np.subtract(r, g, out=out[:, 1])
    out[:, 2] = b - np.float32(0.5) * (r + g)
    return out


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as image fractions: ``(xx, yy)`` each ``(S, S)``."""
    c = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return xx, yy


def pool_factor(size: int) -> int:
    """Block size that brings energy maps down to about 32 x 32 pixels."""
    return max(1, size // 32)


def pool_windows(windows: np.ndarray, size: int) -> np.ndarray:
    """Sum ``(S*S, n)`` windows over the blocks of :func:`pool_factor`: ``(s'*s', n)``."""
    f = pool_factor(size)
    sp = size // f
    w = windows.reshape(size, size, -1)[: sp * f, : sp * f]
    return w.reshape(sp, f, sp, f, -1).sum(axis=(1, 3)).reshape(sp * sp, -1)


def gaussian_windows(size: int, cx: np.ndarray, cy: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Gaussian windows (each summing to 1) as columns: ``(S*S, n)`` float64."""
    xx, yy = pixel_grid(size)
    d2 = (xx[..., None] - cx) ** 2 + (yy[..., None] - cy) ** 2
    g = np.exp(-0.5 * d2 / sigma**2).reshape(size * size, -1)
    g[g < _TINY] = 0.0
    return g / g.sum(axis=0, keepdims=True)


def gabor_pairs(
    size: int,
    cx: np.ndarray,
    cy: np.ndarray,
    sigma: np.ndarray,
    wavelength: np.ndarray,
    theta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Even and odd Gabor filters, ``(S*S, n)`` each; zero mean, envelope summing to 1.

    A grating of amplitude ``A`` at the preferred orientation and wavelength gives responses
    of amplitude about ``A / 2``; a uniform image gives exactly zero.
    """
    xx, yy = pixel_grid(size)
    dx, dy = xx[..., None] - cx, yy[..., None] - cy
    env = np.exp(-0.5 * (dx**2 + dy**2) / sigma**2).reshape(size * size, -1)
    env[env < _TINY] = 0.0
    env /= env.sum(axis=0, keepdims=True)
    phase = (2 * np.pi / wavelength) * (dx * np.cos(theta) + dy * np.sin(theta))
    phase = phase.reshape(size * size, -1)
    even, odd = env * np.cos(phase), env * np.sin(phase)
    # remove the DC response so that a uniform image gives exactly zero
    even -= env * (even.sum(axis=0, keepdims=True) / env.sum(axis=0, keepdims=True))
    odd -= env * (odd.sum(axis=0, keepdims=True) / env.sum(axis=0, keepdims=True))
    return even.astype(np.float32), odd.astype(np.float32)


def block_mean(x: np.ndarray, f: int) -> np.ndarray:
    """Average the last two axes over ``f x f`` blocks (trailing rows/columns dropped)."""
    if f == 1:
        return x
    h, w = x.shape[-2] // f, x.shape[-1] // f
    x = x[..., : h * f, : w * f]
    return x.reshape(*x.shape[:-2], h, f, w, f).mean(axis=(-3, -1))


@dataclass
class EnergyBank:
    """Complex Gabor kernels (orientations x wavelengths) for FFT energy maps.

    Each wavelength is filtered at the coarsest resolution that still gives it about 6 pixels
    per cycle (a block average of the image), then the energy maps are block-averaged to the
    common pooled resolution ``S // pool_factor(S)``: the maps only feed large pooling
    windows (V4, IT), so nothing that matters is lost and most of the work is saved.
    Channel ``j * N_ORI + k`` holds wavelength ``WAVELENGTHS[j]`` at orientation
    ``pi * k / N_ORI``.
    """

    size: int
    levels: list[tuple[int, int, np.ndarray]]  # (downsample d, FFT size P, kernels (O,P,P))

    @property
    def n_channels(self) -> int:
        """Number of energy channels (orientations x wavelengths)."""
        return N_ORI * len(self.levels)

    @classmethod
    def build(cls, size: int) -> EnergyBank:
        """Kernels for ``size`` x ``size`` images."""
        pool = pool_factor(size)
        levels = []
        for w in WAVELENGTHS:
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
            for k in range(N_ORI):
                th = np.pi * k / N_ORI
                carrier = np.exp(1j * (2 * np.pi / lam) * (xx * np.cos(th) + yy * np.sin(th)))
                kern = env * carrier
                kern -= env * kern.sum()  # zero DC (env sums to 1)
                kernels.append(kern)
            kernels_f = scipy.fft.fft2(np.stack(kernels)).astype(np.complex64)
            levels.append((d, pad, kernels_f))
        return cls(size=size, levels=levels)

    def energy(self, lum: np.ndarray) -> np.ndarray:
        """Energy maps of luminance planes ``(n, S, S)``: ``(n, C, s'*s')`` float32."""
        s = self.size
        pool = pool_factor(s)
        sp = s // pool
        out = np.empty((lum.shape[0], self.n_channels, sp, sp), dtype=np.float32)
        for start in range(0, lum.shape[0], _CHUNK):
            block = lum[start : start + _CHUNK]
            for j, (d, pad, kernels_f) in enumerate(self.levels):
                img = block_mean(block[:, : sp * pool, : sp * pool], d)
                m = img.shape[-1]
                padded = np.zeros((img.shape[0], pad, pad), dtype=np.float32)
                padded[:, :m, :m] = img
                f = scipy.fft.fft2(padded, workers=-1)
                resp = scipy.fft.ifft2(f[:, None] * kernels_f[None], workers=-1)[..., :m, :m]
                e = block_mean(resp.real**2 + resp.imag**2, pool // d)
                out[start : start + block.shape[0], j * N_ORI : (j + 1) * N_ORI] = e
        return out.reshape(lum.shape[0], self.n_channels, sp * sp)


@dataclass
class LinearStage:
    """Many linear filters applied with one matrix product per input plane.

    Unit models :meth:`add` named filter blocks on a plane of :data:`PLANES`; :meth:`apply`
    returns every block's responses. One product per plane is much faster than many thin ones.
    """

    size: int
    _cols: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    _slots: dict[str, tuple[str, int, int]] = field(default_factory=dict, repr=False)
    _mats: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def add(self, key: str, plane: str, filters: np.ndarray) -> None:
        """Register ``(S*S, k)`` filters (columns) on ``plane`` under ``key``."""
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; choose among {PLANES}")
        if key in self._slots:
            raise ValueError(f"filters {key!r} already registered")
        mat = np.asarray(filters, dtype=np.float32).reshape(self.size**2, -1)
        cols = self._cols.setdefault(plane, [])
        start = sum(c.shape[1] for c in cols)
        cols.append(mat)
        self._slots[key] = (plane, start, start + mat.shape[1])
        self._mats = None

    def apply(self, planes: np.ndarray) -> dict[str, np.ndarray]:
        """Responses ``{key: (n, k) float32}`` to colour planes ``(n, 3, S*S)``.

        ``planes`` are :func:`colour_planes` of the images, flattened.
        """
        if self._mats is None:
            self._mats = {
                p: np.ascontiguousarray(np.concatenate(c, axis=1)) for p, c in self._cols.items()
            }
        out: dict[str, np.ndarray] = {}
        for plane, mat in self._mats.items():
            base = planes[:, PLANES.index(plane.removesuffix("2"))]
            out[plane] = (base * base if plane.endswith("2") else base) @ mat
        return {k: out[p][:, a:b] for k, (p, a, b) in self._slots.items()}
