"""The ``irfa-nwb`` command line: one entry point, one subcommand per workflow."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

logger = logging.getLogger("irfa_nwb.cli")

EPILOG = """\
examples:
  irfa-nwb demo                                   # whole pipeline on simulated data
  irfa-nwb simulate session.nwb --n-stimuli 500   # a simulated NWB file to play with
  irfa-nwb inspect session.nwb                    # what a file offers
  irfa-nwb fit session.nwb results.nwb --epochs 50
  irfa-nwb fit dandi://000021/sub-703279277/sub-703279277_ses-719161530.nwb results.nwb \\
      --presentations natural_scenes_presentations --images ./natural_scenes/ \\
      --window 0.05 0.25
  irfa-nwb predict results.safetensors other_session.nwb predictions.nwb
  irfa-nwb report results.nwb --out figures/
  irfa-nwb convert-tvsd THINGS_normMUA.mat tvsd.nwb --images-file things_imgs.mat \\
      --image-root THINGS/ --age P7Y
"""


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (see irfa_nwb.IRFA)")
    g.add_argument("--image-size", type=int, default=64)
    g.add_argument("--channels", type=int, default=32)
    g.add_argument("--width", type=int, default=64, help="U-Net / discriminator width")
    g.add_argument("--epochs", type=int, default=100)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--lr", type=float, default=7.8e-4)
    g.add_argument("--perceptual-weight", type=float, default=0.69,
                   help="0 trains without the VGG19 perceptual loss (no pretrained weights)")
    g.add_argument("--early-stopping", action="store_true")
    g.add_argument("--validation-fraction", type=float, default=0.1)
    g.add_argument("--n-iter-no-change", type=int, default=10)
    g.add_argument("--device", default="auto")
    g.add_argument("--seed", type=int, default=0)


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        image_size=args.image_size,
        channels=args.channels,
        width=args.width,
        max_iter=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        perceptual_weight=args.perceptual_weight,
        validation_fraction=args.validation_fraction,
        early_stopping=args.early_stopping,
        n_iter_no_change=args.n_iter_no_change,
        device=args.device,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
    )


def _add_load_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (see irfa_nwb.load_dataset)")
    g.add_argument("--presentations", help="stimulus series or interval table to use")
    g.add_argument("--image-column", help="column of the interval table naming the image")
    g.add_argument("--images", help="folder of image files when the images are not in the file")
    g.add_argument("--responses", default="auto", help="'units', a series name, or 'auto'")
    g.add_argument("--window", type=float, nargs=2, metavar=("START", "STOP"),
                   default=(0.0, 0.2), help="response window after onset, seconds")


def _load_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = dict(responses=args.responses, window=tuple(args.window))
    for key in ("presentations", "image_column", "images"):
        if getattr(args, key):
            out[key] = getattr(args, key)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="irfa-nwb",
        description="Reconstruct seen images from visual-cortex recordings in NWB with IRFA.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="tracebacks on errors")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="simulate, fit, evaluate and report, end to end")
    p.add_argument("--out", default="irfa_demo_output", help="output folder")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")
    p.add_argument("--n-stimuli", type=int, default=None)
    p.add_argument("--perceptual", choices=("auto", "on", "off"), default="auto",
                   help="VGG19 perceptual loss; auto: when its weights are cached and a GPU is "
                   "present")

    p = sub.add_parser("simulate", help="write a simulated (ground-truth) NWB session")
    p.add_argument("output", help=".nwb file to write")
    p.add_argument("--n-stimuli", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=50)
    p.add_argument("--n-repeats", type=int, default=10)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--responses", choices=("spikes", "mua"), default="spikes")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("inspect", help="what an NWB file offers: stimuli, units, areas")
    p.add_argument("source", help="path, dandi:// address or URL")

    p = sub.add_parser("fit", help="fit IRFA on an NWB file and write a results NWB file")
    p.add_argument("source", help="path, dandi:// address or URL")
    p.add_argument("output", help="results .nwb file to write")
    p.add_argument("--model", help="where to save the model (default: OUTPUT.safetensors)")
    p.add_argument("--test-size", type=float, default=0.1)
    p.add_argument("--min-reliability", type=float, default=None)
    p.add_argument("--overwrite", action="store_true")
    _add_load_options(p)
    _add_model_options(p)

    p = sub.add_parser("predict", help="reconstruct with a saved model; write a results file")
    p.add_argument("model", help="saved model (.safetensors from fit)")
    p.add_argument("source", help="NWB file with the same units")
    p.add_argument("output", help="results .nwb file to write")
    p.add_argument("--overwrite", action="store_true")
    _add_load_options(p)

    p = sub.add_parser("report", help="figures and a summary from a results file")
    p.add_argument("results", help="results .nwb file")
    p.add_argument("--out", default=None, help="folder (default: RESULTS_figures/)")

    p = sub.add_parser("convert-tvsd", help="TVSD MATLAB files -> best-practice NWB")
    p.add_argument("mua_file", help="THINGS_normMUA.mat")
    p.add_argument("output", help=".nwb file to write")
    p.add_argument("--images-file", help="things_imgs.mat (image paths)")
    p.add_argument("--image-root", help="folder of THINGS images")
    p.add_argument("--age", required=True, help="ISO 8601 age of the monkey, e.g. P7Y")
    p.add_argument("--subject-id", default="monkeyN")
    p.add_argument("--overwrite", action="store_true")
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ..workflows.demo import run_demo

        model = {} if args.epochs is None else {"max_iter": args.epochs}
        sim = {} if args.n_stimuli is None else {"n_stimuli": args.n_stimuli}
        result = run_demo(
            args.out, simulation=sim, model=model, perceptual=args.perceptual,
            verbose=0 if args.quiet else 1,
        )
        print(result.summary())
    elif args.command == "simulate":
        from ..simulation import write_simulated_recording

        path = write_simulated_recording(
            args.output, responses=args.responses, overwrite=args.overwrite,
            n_stimuli=args.n_stimuli, n_test=args.n_test, n_repeats=args.n_repeats,
            image_size=args.image_size, random_state=args.seed,
        )
        logger.info("wrote %s", path)
    elif args.command == "inspect":
        _inspect(args.source)
    elif args.command == "fit":
        from ..workflows.fit import fit_nwb

        outcome = fit_nwb(
            args.source, args.output, model_path=args.model, load_kwargs=_load_kwargs(args),
            model_kwargs=_model_kwargs(args), test_size=args.test_size,
            min_reliability=args.min_reliability, random_state=args.seed,
            overwrite=args.overwrite,
        )
        if outcome.interrupted:
            print(
                f"irfa-nwb: interrupted; {outcome.model_path} holds the model after epoch "
                f"{outcome.estimator.n_iter_} of {outcome.estimator.max_iter}",
                file=sys.stderr,
            )
            return 130
    elif args.command == "predict":
        from ..workflows.fit import predict_nwb

        path = predict_nwb(args.model, args.source, args.output,
                           load_kwargs=_load_kwargs(args), overwrite=args.overwrite)
        logger.info("wrote %s", path)
    elif args.command == "report":
        from ..workflows.report import write_report

        out = Path(args.out) if args.out else Path(args.results).with_name(
            Path(args.results).stem + "_figures"
        )
        for path in write_report(args.results, out):
            logger.info("%s", path)
    elif args.command == "convert-tvsd":
        from ..data.tvsd import convert_tvsd

        path = convert_tvsd(
            args.mua_file, args.output, images_file=args.images_file,
            image_root=args.image_root, age=args.age, subject_id=args.subject_id,
            overwrite=args.overwrite,
        )
        logger.info("wrote %s", path)
    return 0


def _inspect(source: str) -> None:
    import numpy as np

    from ..data import list_stimulus_tables, open_nwb

    with open_nwb(source) as nwb:
        print(f"{source}: identifier {nwb.identifier!r}, {nwb.session_description!r}")
        units = nwb.units
        if units is not None and len(units):
            print(f"units: {len(units)}")
        else:
            print("units: none")
        electrodes = nwb.electrodes
        if electrodes is not None and len(electrodes):
            locations = np.asarray(electrodes["location"].data[:]).astype(str)
            groups = np.asarray(electrodes["group_name"].data[:]).astype(str) if (
                "group_name" in electrodes.colnames) else np.array([])
            areas, counts = np.unique(locations, return_counts=True)
            print("electrodes by location: " + ", ".join(
                f"{a} ({c})" for a, c in zip(areas, counts, strict=True)))
            if groups.size:
                print(f"electrode groups: {len(np.unique(groups))}")
    table = list_stimulus_tables(source)
    if table.empty:
        print("stimulus tables: none")
    else:
        import pandas as pd

        with pd.option_context("display.max_colwidth", 60, "display.width", 160):
            print("stimulus tables (best first):")
            print(table.to_string(index=False))


def _setup_logging(quiet: bool) -> None:
    """Show the library's INFO messages on stdout (the library itself never prints)."""
    root = logging.getLogger("irfa_nwb")
    for handler in list(root.handlers):
        if getattr(handler, "_irfa_cli", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._irfa_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``irfa-nwb``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.quiet)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("irfa-nwb: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one clear line unless --verbose
        if args.verbose:
            traceback.print_exc()
        else:
            print(f"irfa-nwb: error: {err}", file=sys.stderr)
            print("(run with --verbose for the traceback)", file=sys.stderr)
        return 2 if isinstance(err, ValueError | FileNotFoundError | FileExistsError) else 1


if __name__ == "__main__":
    raise SystemExit(main())
