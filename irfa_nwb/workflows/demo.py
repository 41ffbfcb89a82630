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

#: a CPU-sized configuration (the published one is image_size=64, width=64, 100 epochs), with
#: IRFA's published recipe otherwise. Choices measured on this data (2-core CPU):
#: - ``attention_lr`` 10x ``lr``: the attention scores start as a near-uniform softmax over
#:   heads and at the shared rate stay so for this short a run (the U-Net learns to decode a
#:   global code first), leaving the IRFs diffuse and their peaks at chance distance;
#: - no adversarial term: without the perceptual loss, a discriminator trained every batch cost
#:   ~40 % more time and lowered pixel r / identification in short runs;
#: - three seeds of every model and 100 held-out stimuli, so that the comparison has intervals
#:   (one run of each model differed by less than runs differ from each other).
DEMO_SIMULATION = dict(n_stimuli=1100, n_test=100, n_repeats=10, image_size=32, random_state=0)
DEMO_MODEL = dict(
    image_size=32,
    channels=32,
    kernel_size=4,
    width=32,
    max_iter=15,
    batch_size=16,
    lr=5e-4,
    attention_lr=5e-3,
    adversarial_weight=0.0,
    random_state=0,
)
#: the IRFA variants the demo compares with ridge: name -> parameters on top of DEMO_MODEL
#: ("IRFA" is the published recipe at the CPU size; "IRFA ridge-residual" adds the opt-in
#: small-data option, see the user guide, "Small data sets")
DEMO_VARIANTS: dict[str, dict[str, Any]] = {
    "IRFA": {},
    "IRFA ridge-residual": {"ridge_residual": True},
}
#: seeds of every model in the comparison
DEMO_SEEDS = (0, 1, 2)


@dataclass
class DemoResult:
    """What the demo produced: file paths, the comparison and the IRF localisation check."""

    output_dir: Path
    nwb_path: Path
    results_path: Path
    model_path: Path
    comparison_path: Path
    figures: list[Path]
    metrics: dict[str, dict[str, float]]  # model -> metric -> mean over seeds (and n_test)
    comparison: Any  # xarray.Dataset of irfa_nwb.compare
    rf_distances: Any  # xarray.Dataset per head: peak, true centre, distance
    perceptual: bool
    perceptual_note: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    loss_terms: str = ""

    def verdicts(self) -> list[str]:
        """One sentence per IRFA variant and metric against ridge, plainly worded."""
        from ..analysis.compare import verdict_text

        ds = self.comparison
        out = []
        for pair, first, second in zip(ds["pair"].values, ds["pair_first"].values,
                                       ds["pair_second"].values, strict=True):
            if second != "ridge":
                continue
            for metric, label in zip(ds["metric"].values, ds["metric_label"].values,
                                     strict=True):
                row = ds.sel(pair=pair, metric=metric)
                lo, hi = (float(v) for v in row["difference_ci"].values)
                out.append(f"{first} vs ridge, {label}: {float(row['difference']):+.3f} "
                           f"[{lo:+.3f}, {hi:+.3f}] - {verdict_text(ds, str(pair), str(metric))}")
        return out

    def summary(self) -> str:
        """A plain-text summary: the comparison with intervals, then the IRF check."""
        from ..analysis.compare import comparison_table

        ds = self.comparison
        n_test = int(ds["n_held_out"].max())
        lines = [
            "",
            f"Reconstruction of {n_test} held-out stimuli (averaged over repeats), "
            f"{ds.sizes['seed']} seeds per model, {100 * ds.attrs['confidence']:g}% paired "
            "bootstrap intervals",
            comparison_table(ds),
            "",
            "In words (difference to ridge, its interval, the verdict):",
            *("  " + v for v in self.verdicts()),
        ]
        d = self.rf_distances
        lines += [
            "",
            "Spatial IRF peak vs the array's true RF centre (IRFA, seed "
            f"{int(ds['seed'].values[0])}; distance in image widths)",
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
            f"files: {self.nwb_path}, {self.results_path}, {self.comparison_path}, "
            f"{self.model_path}, {len(self.figures)} figures in {self.output_dir / 'figures'}",
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
    variants: dict[str, dict[str, Any]] | None = None,
    seeds: tuple[int, ...] | list[int] = DEMO_SEEDS,
    perceptual: str = "auto",
    n_bootstrap: int = 2000,
    verbose: int = 1,
) -> DemoResult:
    """Run the whole pipeline on simulated data and return what it produced.

    Simulates a session and writes it as NWB, loads it back, compares the IRFA variants with a
    ridge baseline over ``seeds`` (:func:`irfa_nwb.compare`: the simulator's designated test
    set, paired bootstrap intervals), evaluates the first variant's first-seed model in full
    (inverse receptive fields against the arrays' true receptive-field centres), and writes
    the results, the comparison (both NWB) and the figures. Progress goes to the
    ``irfa_nwb.workflows`` logger (the command line shows it).

    Parameters
    ----------
    output_dir : path
        Where the NWB files, the saved model and the figures go (created).
    simulation : dict, optional
        Overrides of :data:`DEMO_SIMULATION` (passed to
        :func:`irfa_nwb.write_simulated_recording`).
    model : dict, optional
        Overrides of :data:`DEMO_MODEL` (passed to every :class:`irfa_nwb.IRFA` variant).
    variants : dict, optional
        IRFA variants to compare (name -> parameters on top of the model); default
        :data:`DEMO_VARIANTS`. The first one is evaluated in full and saved.
    seeds : sequence of int, default :data:`DEMO_SEEDS`
    perceptual : {"auto", "on", "off"}
        Train with the VGG19 perceptual loss: "auto" when its pretrained weights are cached and
        a GPU is present (see :func:`_perceptual_choice`).
    n_bootstrap : int, default 2000
        Bootstrap resamples of the comparison.
    verbose : int
        0: no progress bars; 1: a progress bar while fitting.
    """
    from .. import (
        IRFA,
        RidgeReconstruction,
        average_repeats,
        compare,
        evaluate,
        load_dataset,
        split_stimuli,
        write_results,
        write_simulated_recording,
    )
    from ..analysis.compare import plot_comparison
    from ..analysis.figures import save_figure
    from ..errors import InputError
    from ..simulation import array_rf_centres
    from .report import write_report

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = {**DEMO_SIMULATION, **(simulation or {})}
    params = {**DEMO_MODEL, **(model or {})}
    variants = dict(DEMO_VARIANTS if variants is None else variants)
    if not variants or "ridge" in variants:
        raise InputError("variants needs at least one IRFA variant, and none named 'ridge'")
    seeds = tuple(int(s) for s in seeds)
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
    names = list(variants)
    models: dict[str, Any] = {
        name: IRFA(verbose=verbose, **{**params, **extra}) for name, extra in variants.items()
    }
    models["ridge"] = RidgeReconstruction(image_size=int(params["image_size"]))
    logger.info(
        "[3/5] comparing %s over seeds %s (%s the VGG19 perceptual loss: %s)",
        ", ".join(models), list(seeds), "with" if use_perceptual else "without",
        perceptual_note,
    )
    kept: dict[str, Any] = {}

    def keep_first_seed(name: str, seed: int, estimator: Any) -> None:
        if seed == seeds[0]:
            kept[name] = estimator

    comparison = compare(models, dataset, seeds=seeds, n_bootstrap=n_bootstrap,
                         random_state=0, on_fit=keep_first_seed)
    estimator = kept[names[0]]
    model_path = estimator.save(out / "irfa_model.safetensors", overwrite=True)
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    evaluation = evaluate(estimator, test)
    distances = rf_localisation(
        spatial_irf_peaks(evaluation["spatial_irf"].values[None], estimator.heads_,
                          border=estimator.kernel_size - 1),
        array_rf_centres(dataset),
    )
    n_test = int(comparison["n_held_out"].max())
    metrics = {
        str(model_name): {
            **{str(k): float(comparison["value_mean"].sel(model=model_name, metric=k))
               for k in comparison["metric"].values},
            "n_test": float(n_test),
        }
        for model_name in comparison["model"].values
    }
    logger.info("[4/5] evaluated the models on the held-out stimuli")
    timings["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    results_path = write_results(out / "irfa_results.nwb", evaluation, source=nwb_path,
                                 overwrite=True)
    comparison_path = write_results(out / "irfa_comparison.nwb", comparison, source=nwb_path,
                                    overwrite=True)
    figures = list(write_report(results_path, out / "figures"))
    figures.append(save_figure(plot_comparison(comparison),
                               out / "figures" / "comparison.png"))
    logger.info("[5/5] wrote %s, %s and %d report files to %s", results_path,
                comparison_path, len(figures), out / "figures")
    timings["results"] = time.perf_counter() - t0
    return DemoResult(
        output_dir=out,
        nwb_path=Path(nwb_path),
        results_path=Path(results_path),
        model_path=Path(model_path),
        comparison_path=Path(comparison_path),
        figures=[Path(f) for f in figures],
        metrics=metrics,
        comparison=comparison,
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
