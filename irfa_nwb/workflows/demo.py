"""The end-to-end demo: simulate → NWB → load → fit IRFA and a ridge baseline → results NWB.

Everything runs on a laptop CPU in a few minutes and downloads nothing. The simulated "virtual
cortex" has known receptive-field centres, so the demo also checks that the fitted spatial
inverse receptive fields land where the arrays' receptive fields really are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("irfa_nwb.workflows")

#: a CPU-sized configuration (the published one is image_size=64, width=64, 100 epochs). Tuned
#: on this data (2-core CPU, about 5 minutes of fitting):
#: - 2400 stimuli x 30 epochs: against 1200 x 40, IRFA's held-out pixel r rose .35 -> .42 and
#:   identification .25 -> .32 (the ridge baseline sees the same data: .38 -> .40, .27 -> .23);
#: - ``attention_lr`` 10x ``lr``: the attention scores start as a near-uniform softmax over
#:   heads and at the shared rate stay so for this short a run (the U-Net learns to decode a
#:   global code first), leaving the IRFs diffuse and their peaks at chance distance;
#: - no adversarial term: without the perceptual loss, a discriminator trained every batch cost
#:   ~40 % more time and lowered pixel r / identification in short runs.
DEMO_SIMULATION = dict(n_stimuli=2400, n_test=60, n_repeats=10, image_size=32, random_state=0)
DEMO_MODEL = dict(
    image_size=32,
    channels=32,
    kernel_size=4,
    width=32,
    max_iter=30,
    batch_size=16,
    lr=5e-4,
    attention_lr=5e-3,
    adversarial_weight=0.0,
    random_state=0,
)


@dataclass
class DemoResult:
    """What the demo produced: file paths, metrics and the IRF localisation check."""

    output_dir: Path
    nwb_path: Path
    results_path: Path
    model_path: Path
    figures: list[Path]
    metrics: dict[str, dict[str, float]]
    rf_distances: Any  # xarray.Dataset per head: peak, true centre, distance
    perceptual: bool
    perceptual_note: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    loss_terms: str = ""

    def summary(self) -> str:
        """A plain-text summary table."""
        lines = [
            "",
            "Reconstruction of held-out stimuli "
            f"({self.metrics['IRFA']['n_test']:.0f} images, averaged over repeats)",
            f"{'model':<8}{'pixel r':>10}{'SSIM':>10}{'ident. (n-way)':>16}{'ident. (2-way)':>16}",
        ]
        for name, m in self.metrics.items():
            lines.append(
                f"{name:<8}{m['pixel_r']:>10.3f}{m['ssim']:>10.3f}"
                f"{m['identification']:>16.3f}{m['identification_2way']:>16.3f}"
            )
        d = self.rf_distances
        lines += [
            "",
            "Spatial IRF peak vs the array's true RF centre (distance in image widths)",
            f"{'head':<10}{'area':<6}{'peak x,y':>14}{'true x,y':>14}{'distance':>10}",
        ]
        for head in d["head"].values:
            row = d.sel(head=head)
            lines.append(
                f"{head!s:<10}{row['area'].item()!s:<6}"
                f"{row['peak_x'].item():>7.2f},{row['peak_y'].item():>5.2f}"
                f"{row['true_x'].item():>9.2f},{row['true_y'].item():>5.2f}"
                f"{row['distance'].item():>10.3f}"
            )
        lines += [
            f"median distance {float(d['distance'].median()):.3f} "
            f"(chance, to other arrays' centres: {d.attrs['chance_distance']:.3f})",
            "",
            "perceptual loss: "
            + ("on" if self.perceptual else "off")
            + (f" ({self.perceptual_note})" if self.perceptual_note else "")
            + (f"; generator losses: {self.loss_terms}" if self.loss_terms else ""),
            f"files: {self.nwb_path}, {self.results_path}, {self.model_path}, "
            f"{len(self.figures)} figures in {self.output_dir / 'figures'}",
            "time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items()),
        ]
        return "\n".join(lines)


def spatial_irf_peaks(
    spatial_fields: Any, heads: list[str], smooth: float = 1.0, border: int = 0
):
    """Peak location (image fractions, x from left, y from top) of each head's mean map.

    Parameters
    ----------
    spatial_fields : array (n_stimuli, n_heads, i, i)
    heads : list of str
    smooth : float
        Gaussian smoothing (pixels) before taking the arg-max.
    border : int, default 0
        Lines at each edge left out of the arg-max search. With a ``k × k`` score convolution
        and zero padding, the first / last ``k − 1`` rows and columns see a truncated kernel:
        their scores (hence weights) follow different parameters from the interior's and can
        sit at extreme values whatever the data; the demo passes ``kernel_size − 1``.
    """
    import xarray as xr
    from scipy.ndimage import gaussian_filter

    maps = np.asarray(spatial_fields, dtype=np.float64).mean(axis=0)
    size = maps.shape[-1]
    px, py = [], []
    if not 0 <= 2 * border < size:
        raise ValueError(f"border={border} leaves no pixels of a {size}-pixel map")
    inner = slice(border, size - border)
    for m in maps:
        search = gaussian_filter(m, smooth)[inner, inner]
        y, x = np.unravel_index(np.argmax(search), search.shape)
        y, x = y + border, x + border
        px.append((x + 0.5) / size)
        py.append((y + 0.5) / size)
    return xr.Dataset(
        {"peak_x": ("head", np.array(px)), "peak_y": ("head", np.array(py))},
        coords={"head": list(heads)},
    )


def rf_localisation(peaks, true_centres):
    """Distance of each head's IRF peak from its array's true RF centre.

    ``attrs["chance_distance"]`` is the median distance of a peak to the *other* arrays'
    centres: what a peak that ignores its array would score.
    """
    true = true_centres.rename(electrode_group="head").sel(head=peaks["head"])
    out = peaks.assign(true_x=true["rf_x"], true_y=true["rf_y"], area=true["area"])
    out["distance"] = np.hypot(out["peak_x"] - out["true_x"], out["peak_y"] - out["true_y"])
    px, py = out["peak_x"].values, out["peak_y"].values
    tx, ty = out["true_x"].values, out["true_y"].values
    cross = np.hypot(px[:, None] - tx[None, :], py[:, None] - ty[None, :])
    off = cross[~np.eye(len(px), dtype=bool)]
    out.attrs["chance_distance"] = float(np.median(off)) if off.size else float("nan")
    return out


def _perceptual_choice(choice: str) -> tuple[bool, str]:
    """Whether the demo uses the VGG19 perceptual loss, and why.

    ``"auto"`` uses it when the pretrained weights are cached *and* a CUDA device is present:
    on a CPU the perceptual network costs several times the rest of a training step, which would
    take the demo far past its few-minute budget.
    """
    import torch

    from ..model.pretrained import weights_path

    if choice not in ("auto", "on", "off"):
        raise ValueError(f"perceptual must be 'auto', 'on' or 'off'; got {choice!r}")
    have_weights = weights_path("vgg19").is_file()
    if choice == "off":
        return False, "turned off"
    if choice == "on":
        found = "found" if have_weights else "missing: fit says how to get it"
        return True, f"pretrained VGG19 {found}"
    if not have_weights:
        return False, "no pretrained VGG19 weights on this machine"
    if not torch.cuda.is_available():
        return False, (
            "pretrained VGG19 found, but no GPU: too slow for the demo on a CPU "
            "(--perceptual on forces it)"
        )
    return True, "pretrained VGG19 found, on the GPU"


def run_demo(
    output_dir: str | Path = "irfa_demo_output",
    *,
    simulation: dict | None = None,
    model: dict | None = None,
    perceptual: str = "auto",
    verbose: int = 1,
) -> DemoResult:
    """Run the whole pipeline on simulated data and return what it produced.

    Progress goes to the ``irfa_nwb.workflows`` logger (the command line shows it).

    Parameters
    ----------
    output_dir : path
        Where the NWB files, the saved model and the figures go (created).
    simulation : dict, optional
        Overrides of :data:`DEMO_SIMULATION` (passed to
        :func:`irfa_nwb.write_simulated_recording`).
    model : dict, optional
        Overrides of :data:`DEMO_MODEL` (passed to :class:`irfa_nwb.IRFA`).
    perceptual : {"auto", "on", "off"}
        Train with the VGG19 perceptual loss: "auto" when its pretrained weights are cached and
        a GPU is present (see :func:`_perceptual_choice`).
    verbose : int
        0: no progress bar; 1: a progress bar while fitting.
    """
    from .. import (
        IRFA,
        RidgeReconstruction,
        average_repeats,
        evaluate,
        load_dataset,
        split_stimuli,
        write_results,
        write_simulated_recording,
    )
    from ..simulation import array_rf_centres
    from .report import write_report

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = {**DEMO_SIMULATION, **(simulation or {})}
    params = {**DEMO_MODEL, **(model or {})}
    use_perceptual, perceptual_note = _perceptual_choice(perceptual)
    if not use_perceptual:
        params["perceptual_weight"] = 0.0
    elif params.get("perceptual_weight", 0) <= 0:
        params["perceptual_weight"] = 0.69
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    nwb_path = write_simulated_recording(out / "simulated_session.nwb", overwrite=True, **sim)
    logger.info("[1/5] simulated %d stimuli on V1/V4/IT arrays -> %s", sim["n_stimuli"],
                nwb_path)
    dataset = load_dataset(nwb_path)
    train, test = split_stimuli(dataset)
    train, test = average_repeats(train), average_repeats(test)
    logger.info(
        "[2/5] loaded it back: %d stimuli x %d units; %d training and %d held-out stimuli",
        dataset.sizes["stimulus_id"], dataset.sizes["unit"], train.sizes["stimulus_id"],
        test.sizes["stimulus_id"],
    )
    timings["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    logger.info(
        "[3/5] fitting IRFA (%s the VGG19 perceptual loss: %s)",
        "with" if use_perceptual else "without", perceptual_note,
    )
    estimator = IRFA(verbose=verbose, **params).fit(train["responses"], train["images"])
    model_path = estimator.save(out / "irfa_model.safetensors", overwrite=True)
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ridge = RidgeReconstruction(image_size=estimator.image_size_).fit(
        train["responses"], train["images"]
    )
    evaluations = {"IRFA": evaluate(estimator, test), "ridge": evaluate(ridge, test)}
    metrics = {
        name: {
            "pixel_r": ev.attrs["mean_pixel_r"],
            "ssim": ev.attrs["mean_ssim"],
            "identification": ev.attrs["identification_accuracy"],
            "identification_2way": ev.attrs["identification_accuracy_2way"],
            "n_test": float(ev.sizes["stimulus_id"]),
        }
        for name, ev in evaluations.items()
    }
    distances = rf_localisation(
        spatial_irf_peaks(evaluations["IRFA"]["spatial_irf"].values[None], estimator.heads_,
                          border=estimator.kernel_size - 1),
        array_rf_centres(dataset),
    )
    logger.info("[4/5] evaluated IRFA and the ridge baseline on the held-out stimuli")
    timings["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    results_path = write_results(out / "irfa_results.nwb", evaluations["IRFA"],
                                 source=nwb_path, overwrite=True)
    figures = write_report(results_path, out / "figures")
    logger.info("[5/5] wrote %s and %d report files to %s", results_path, len(figures),
                out / "figures")
    timings["results"] = time.perf_counter() - t0
    return DemoResult(
        output_dir=out,
        nwb_path=Path(nwb_path),
        results_path=Path(results_path),
        model_path=Path(model_path),
        figures=list(figures),
        metrics=metrics,
        rf_distances=distances,
        perceptual=use_perceptual,
        perceptual_note=perceptual_note,
        timings=timings,
        loss_terms=" + ".join(
            name
            for name, key in (("pixel", "pixel_weight"), ("perceptual", "perceptual_weight"),
                              ("adversarial", "adversarial_weight"))
            if estimator.get_params()[key] > 0
        ),
    )
