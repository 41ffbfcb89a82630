"""The ``irfa-nwb`` command line: one entry point, one subcommand per workflow.

Exit status: 0 success; 1 failure (an error of irfa-nwb, I/O, anything at run time); 2 usage
(unknown command or option, invalid option value); 130 interrupted (Ctrl-C). Errors are one
line on stderr; ``--verbose`` adds the traceback. Progress goes to stdout through the
``irfa_nwb`` logger (the library never prints), warnings to stderr.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from .options import (
    LOADER_DEST_PREFIX,
    NOT_ON_COMMAND_LINE,
    Option,
    add_options,
    fraction,
    show_default,
)

logger = logging.getLogger("irfa_nwb.cli")

#: exit statuses
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

COMMANDS = ("demo", "simulate", "inspect", "fit", "predict", "compare", "report",
            "convert-tvsd")

EPILOG = """\
examples:
  irfa-nwb demo                                   # whole pipeline on simulated data
  irfa-nwb simulate session.nwb --n-stimuli 500   # a simulated NWB file to play with
  irfa-nwb inspect session.nwb                    # what a file offers, and the fit command
  irfa-nwb fit session.nwb results.nwb --max-iter 50
  irfa-nwb fit dandi://000021/sub-703279277/sub-703279277_ses-719161530.nwb results.nwb \\
      --presentations natural_scenes_presentations --images ./natural_scenes/ \\
      --windows VISp=0.03,0.13 VISl=0.04,0.14 --quality allen
  irfa-nwb fit session.nwb results.nwb --checkpoint-path ckpt.safetensors   # then, after Ctrl-C:
  irfa-nwb fit session.nwb results.nwb --checkpoint-path ckpt.safetensors --resume ckpt.safetensors
  torchrun --nproc-per-node 4 -m irfa_nwb fit session.nwb results.nwb   # 4 GPUs, one node
  irfa-nwb predict results.safetensors other_session.nwb predictions.nwb
  irfa-nwb compare session.nwb comparison.nwb --seeds 0 1 2 --max-iter 20   # IRFA vs ridge
  irfa-nwb report results.nwb --out figures/
  irfa-nwb convert-tvsd THINGS_normMUA.mat tvsd.nwb --images-file things_imgs.mat \\
      --image-root THINGS/ --age P7Y

global options (before or after the command):
  -v, --verbose   print the traceback of an error; show debug messages
  -q, --quiet     no progress output (warnings and errors only)

exit status:
  0    success
  1    failure: an error of irfa-nwb (damaged or unsuitable file, missing weights, output
       not writable...), an I/O error, anything that fails while running
  2    usage: unknown command or option, invalid option value
  130  interrupted (Ctrl-C); an interrupted fit saves the model of its last finished epoch
"""

FIT_EPILOG = """\
Every parameter of irfa_nwb.IRFA is an option (--max-iter has the alias --epochs,
--random-state the alias --seed, which also seeds the train / test split), except:
{excluded}

The output paths (results file and model file) are checked before anything is loaded. Ctrl-C
stops training at a safe point: the model of the last finished epoch is saved to the model
path, no results file is written, and the exit status is 130.
"""


class UsageError(Exception):
    """An option value that parsed but is invalid (exit status 2)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog as written and shows every option's default, as it would be typed."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.default is argparse.SUPPRESS
            or not action.option_strings
            or not getattr(action, "show_default", True)
            or "%(default)" in text
            or (action.default is None and "default" in text.lower())
        ):
            return text
        shown = show_default(action.default).replace("%", "%%")
        return f"{text} (default: {shown})".strip()


def _arg(group: Any, *flags: str, show: bool = True, **kwargs: Any) -> argparse.Action:
    action = group.add_argument(*flags, **kwargs)
    action.show_default = show  # type: ignore[attr-defined]
    return action


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--verbose`` / ``--quiet``, on the main parser and on every subcommand.

    On subcommands their default is ``SUPPRESS``, so that an option given before the command
    is not reset by the subcommand's default.
    """
    group = parser.add_argument_group("global options") if not top else parser
    default = False if top else argparse.SUPPRESS
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="print the traceback of an error; show debug messages")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="no progress output (warnings and errors only)")


def _estimator_options() -> list[Option]:
    from ..estimator.irfa import IRFA
    from .options import estimator_options

    return estimator_options(IRFA)


def _loader_options(*, for_predict: bool) -> list[Option]:
    from .options import loader_options

    return loader_options(for_predict=for_predict)


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``irfa-nwb``.

    Parameters
    ----------
    commands : collection of str, optional
        Commands whose generated options (estimator, loader) are added; default all. The
        entry point adds only those of the command being run, which keeps start-up fast
        (building them imports the estimator and the loader).

    Returns
    -------
    argparse.ArgumentParser
    """
    commands = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(
        prog="irfa-nwb",
        description="Reconstruct seen images from visual-cortex recordings in NWB with IRFA.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, arguments: str = "",
                epilog: str | None = None) -> argparse.ArgumentParser:
        # a short usage line: the full one of fit runs to forty lines before each error
        usage = (f"%(prog)s [options] {arguments}".rstrip()
                 + "\n       (%(prog)s --help lists the options)")
        p = sub.add_parser(name, help=help, description=help, epilog=epilog, usage=usage,
                           formatter_class=HelpFormatter)
        p.set_defaults(_parser=p)
        return p

    p = command("demo", "simulate, fit, evaluate and report, end to end")
    _arg(p, "--out", default="irfa_demo_output", help="output folder")
    _arg(p, "--epochs", type=int, default=None, show=False,
         help="override the demo's epochs (default: the demo's 15)")
    _arg(p, "--n-stimuli", type=int, default=None, show=False,
         help="override the demo's number of stimuli (default: the demo's 1100, 100 of them "
              "held out)")
    _arg(p, "--seeds", type=int, nargs="+", default=None, show=False,
         help="seeds of every model in the comparison (default: the demo's 0 1 2)")
    _arg(p, "--perceptual", choices=("auto", "on", "off"), default="auto",
         help="VGG19 perceptual loss; auto: when its weights are cached and a GPU is present")
    _global_options(p, top=False)

    p = command("simulate", "write a simulated (ground-truth) NWB session", "output")
    p.add_argument("output", help=".nwb file to write")
    _arg(p, "--n-stimuli", type=int, default=1000, help="stimuli (images) shown")
    _arg(p, "--n-test", type=int, default=50, help="of which test stimuli, shown repeatedly")
    _arg(p, "--n-repeats", type=int, default=10, help="repeats of each test stimulus")
    _arg(p, "--image-size", type=int, default=64, help="side of the images, pixels")
    _arg(p, "--seed", type=int, default=0, help="random seed")
    _arg(p, "--responses", choices=("spikes", "mua"), default="spikes",
         help="units with spike times, or a processed MUA series")
    _arg(p, "--overwrite", action="store_true", help="replace an existing file")
    _global_options(p, top=False)

    p = command("inspect", "check that a file reads completely, list what it offers and print "
                "the fit command", "source")
    p.add_argument("source", help="path, dandi:// address or URL")
    _arg(p, "--no-verify", dest="verify", action="store_false",
         help="do not read every dataset first (faster for large remote files; damage then "
         "shows only when the data is read)", show=False)
    _arg(p, "--sha256", metavar="HEX", show=False,
         help="expected SHA-256 of the file (DANDI lists it per asset): also compared")
    if "inspect" in commands:
        from .options import open_options

        add_options(p.add_argument_group("streaming (see irfa_nwb.open_nwb)"), open_options())
    _global_options(p, top=False)

    excluded = "\n".join(f"  {name}: {why}" for name, why in NOT_ON_COMMAND_LINE.items())
    p = command("fit", "fit IRFA on an NWB file and write a results NWB file and the model",
                "source output", FIT_EPILOG.format(excluded=excluded))
    p.add_argument("source", help="path, dandi:// address or URL")
    p.add_argument("output", help="results .nwb file to write")
    g = p.add_argument_group("fit (see irfa_nwb.workflows.fit.fit_nwb)")
    _arg(g, "--model", metavar="PATH", show=False,
         help="where to save the model (default: OUTPUT with the suffix .safetensors)")
    _arg(g, "--test-size", type=fraction, default=0.1, metavar="FRACTION",
         help="fraction of stimuli held out when the file designates no test split")
    _arg(g, "--min-reliability", type=float, default=None, show=False, metavar="R",
         help="keep only units whose split-half reliability exceeds this (needs repeats; "
         "default: keep all)")
    _arg(g, "--train-on", choices=("averages", "presentations"), default="averages",
         help="fit on the repeat-averaged response of each training stimulus, or on every "
         "presentation")
    _arg(g, "--overwrite", action="store_true", help="replace existing output files")
    _arg(g, "--resume", metavar="CHECKPOINT", default=None, show=False,
         help="continue an interrupted fit from its checkpoint (written with "
         "--checkpoint-path); give the same data and model options")
    if "fit" in commands:
        add_options(p.add_argument_group("data (see irfa_nwb.load_dataset)"),
                    _loader_options(for_predict=False))
        model = _estimator_options()
        add_options(p.add_argument_group("model (see irfa_nwb.IRFA)"), model)
        p.set_defaults(_model_params=tuple(o.name for o in model))
    _global_options(p, top=False)

    p = command("compare", "compare IRFA with the ridge baseline over seeds, with paired "
                "bootstrap confidence intervals; write a results file and a figure",
                "source output")
    p.add_argument("source", help="path, dandi:// address or URL")
    p.add_argument("output", help="results .nwb file to write")
    g = p.add_argument_group("comparison (see irfa_nwb.compare)")
    _arg(g, "--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED",
         help="one fit of every model per seed (a new split per seed when the file "
         "designates none)")
    _arg(g, "--test-size", type=fraction, default=0.1, metavar="FRACTION",
         help="fraction of stimuli held out when the file designates no test split")
    _arg(g, "--n-bootstrap", type=int, default=2000, help="bootstrap resamples")
    _arg(g, "--confidence", type=fraction, default=0.95, help="level of the intervals")
    _arg(g, "--min-reliability", type=float, default=None, show=False, metavar="R",
         help="keep only units whose split-half reliability exceeds this")
    _arg(g, "--train-on", choices=("averages", "presentations"), default="averages",
         help="fit on repeat averages or on every presentation")
    _arg(g, "--no-figure", dest="figure", action="store_false",
         help="do not draw the comparison figure", show=False)
    _arg(g, "--overwrite", action="store_true", help="replace existing output files")
    if "compare" in commands:
        add_options(p.add_argument_group("data (see irfa_nwb.load_dataset)"),
                    _loader_options(for_predict=False))
        model = _estimator_options()
        add_options(p.add_argument_group("IRFA (see irfa_nwb.IRFA; ridge is fitted at the "
                                         "same image size)"), model)
        p.set_defaults(_model_params=tuple(o.name for o in model))
    _global_options(p, top=False)

    p = command("predict", "reconstruct with a saved model; write a results file",
                "model source output")
    p.add_argument("model", help="saved model (.safetensors from fit)")
    p.add_argument("source", help="NWB file with the same units")
    p.add_argument("output", help="results .nwb file to write")
    _arg(p, "--check-responses", action=argparse.BooleanOptionalAction, default=True,
         help="refuse responses of another kind, window or units than the model was fitted on")
    _arg(p, "--overwrite", action="store_true", help="replace an existing results file")
    if "predict" in commands:
        add_options(p.add_argument_group("data (see irfa_nwb.load_dataset)"),
                    _loader_options(for_predict=True))
    _global_options(p, top=False)

    p = command("report", "figures and a summary from a results file", "results")
    p.add_argument("results", help="results .nwb file")
    _arg(p, "--out", default=None, show=False,
         help="folder (default: RESULTS_figures/ next to the results file)")
    _global_options(p, top=False)

    p = command("convert-tvsd", "TVSD MATLAB files -> best-practice NWB",
                "--age AGE mua_file output")
    p.add_argument("mua_file", help="THINGS_normMUA.mat")
    p.add_argument("output", help=".nwb file to write")
    _arg(p, "--images-file", show=False, help="things_imgs.mat (image paths)")
    _arg(p, "--image-root", show=False, help="folder of THINGS images")
    _arg(p, "--age", required=True, show=False, help="ISO 8601 age of the monkey, e.g. P7Y")
    _arg(p, "--subject-id", default="monkeyN", help="subject id")
    _arg(p, "--overwrite", action="store_true", help="replace an existing file")
    _global_options(p, top=False)
    return parser


# --------------------------------------------------------------------------- option values

def _open_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Streaming options of ``open_nwb`` that were given or have a default."""
    return {k: v for k, v in _loader_values(args).items() if k in _OPEN_PARAMS}


def _load_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Options of ``load_dataset`` that have a value (None: the loader's / model's choice)."""
    return _loader_values(args)


_OPEN_PARAMS = ("backend", "cache_dir", "retries", "retry_delay", "timeout", "api_url")


def _loader_values(args: argparse.Namespace) -> dict[str, Any]:
    n = len(LOADER_DEST_PREFIX)
    return {
        key[n:]: value for key, value in vars(args).items()
        if key.startswith(LOADER_DEST_PREFIX) and value is not None
    }


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The estimator's parameters from the generated options."""
    kwargs = {name: getattr(args, name) for name in args._model_params}
    kwargs["verbose"] = 0 if args.quiet else 1
    return kwargs


def _check_model_kwargs(kwargs: dict[str, Any]) -> None:
    """Refuse invalid estimator parameters before any data is loaded (a usage error)."""
    from ..errors import InputError
    from ..estimator.irfa import IRFA

    try:
        IRFA(**kwargs)._check_params()
    except InputError as err:
        flags = {n: f"--{n.replace('_', '-')}" for n in kwargs}
        text = str(err)
        name = re.match(r"(\w+)", text)
        if name and name.group(1) in flags:
            text = f"{flags[name.group(1)]}: {text}"
        raise UsageError(text) from None


# --------------------------------------------------------------------------- commands


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ..workflows.demo import run_demo

        model = {} if args.epochs is None else {"max_iter": args.epochs}
        sim = {} if args.n_stimuli is None else {"n_stimuli": args.n_stimuli}
        extra = {} if args.seeds is None else {"seeds": args.seeds}
        result = run_demo(
            args.out, simulation=sim, model=model, perceptual=args.perceptual,
            verbose=0 if args.quiet else 1, **extra,
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
        _inspect(args)
    elif args.command == "fit":
        return _fit(args)
    elif args.command == "compare":
        from ..workflows.compare import compare_nwb

        model_kwargs = _model_kwargs(args)
        _check_model_kwargs(model_kwargs)
        outcome = compare_nwb(
            args.source, args.output, model_kwargs=model_kwargs, seeds=args.seeds,
            test_size=args.test_size, load_kwargs=_load_kwargs(args),
            min_reliability=args.min_reliability, n_bootstrap=args.n_bootstrap,
            confidence=args.confidence, train_on=args.train_on, figure=args.figure,
            overwrite=args.overwrite,
        )
        print(outcome.table)
    elif args.command == "predict":
        from ..workflows.fit import predict_nwb

        path = predict_nwb(args.model, args.source, args.output,
                           load_kwargs=_load_kwargs(args), check_responses=args.check_responses,
                           overwrite=args.overwrite)
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
    return EXIT_OK


def _fit(args: argparse.Namespace) -> int:
    from ..workflows.fit import fit_nwb

    model_kwargs = _model_kwargs(args)
    _check_model_kwargs(model_kwargs)
    outcome = fit_nwb(
        args.source, args.output, model_path=args.model, load_kwargs=_load_kwargs(args),
        model_kwargs=model_kwargs, test_size=args.test_size,
        min_reliability=args.min_reliability, train_on=args.train_on,
        random_state=args.random_state, overwrite=args.overwrite, resume_from=args.resume,
    )
    if not outcome.interrupted:
        return EXIT_OK
    done, total = outcome.estimator.n_iter_, outcome.estimator.max_iter
    if done:
        what = (f"{outcome.model_path} holds the model after epoch {done} of {total} "
                f"({done} finished epoch{'s' if done != 1 else ''})")
    else:
        what = (f"no epoch had finished: {outcome.model_path} holds the untrained model "
                f"(0 of {total} epochs)")
    print(f"irfa-nwb: interrupted: {what}; no results file was written", file=sys.stderr)
    return EXIT_INTERRUPTED


def _inspect(args: argparse.Namespace) -> None:
    from ..errors import NWBReadError
    from .summary import summarize_file

    if args.sha256 and not args.verify:
        raise UsageError("--sha256 needs the full read of the file; leave out --no-verify")
    summary = summarize_file(args.source, verify=args.verify, sha256=args.sha256,
                             open_kwargs=_open_kwargs(args))
    if not summary.ok:
        report = summary.report
        print(report)
        failed = report.failed
        if failed:
            named = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3
                                             else "")
            why = f"{len(failed)} object(s) cannot be read: {named}"
        else:
            why = "its SHA-256 does not match the expected one"
        state = "unreadable" if not report.opened else "damaged"
        raise NWBReadError(
            f"{report.source} is {state}: {why}; download it again (the file was not modified)",
            source=report.source,
        )
    for line in summary.lines():
        print(line)


# --------------------------------------------------------------------------- errors


#: per command, how the library's Python advice for missing pretrained weights reads on the
#: command line: (pattern, replacement, the fix to append when the pattern is not found or None)
_WEIGHTS_ADVICE: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "fit": (
        (r"allow_download=True", "--allow-download", None),
        (r"IRFA\(perceptual_weight=0\)", "--perceptual-weight 0",
         "--perceptual-weight 0 trains without the perceptual loss (no pretrained weights)"),
    ),
    "compare": (
        (r"allow_download=True", "--allow-download", None),
        (r"IRFA\(perceptual_weight=0\)", "--perceptual-weight 0",
         "--perceptual-weight 0 trains without the perceptual loss (no pretrained weights)"),
    ),
    "demo": (
        (r"\(allow_download=True, with (\w+) unset\)", r"(unset \1)", None),
        (r"IRFA\(perceptual_weight=0\)", "--perceptual off",
         "--perceptual off runs the demo without the perceptual loss"),
    ),
}


def error_message(err: BaseException, command: str | None = None) -> str:
    """One line that says what failed, with command-line advice where the library's is Python.

    Parameters
    ----------
    err : BaseException
        The error.
    command : str, optional
        The subcommand that was running.

    Returns
    -------
    str
    """
    from ..errors import IRFAError, MissingWeightsError

    text = " ".join(str(err).split())
    if not isinstance(err, IRFAError | OSError) or not text:
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    if isinstance(err, MissingWeightsError):
        missing = []
        for pattern, replacement, fix in _WEIGHTS_ADVICE.get(command or "", ()):
            text, n = re.subn(pattern, replacement, text)
            if not n and fix is not None:
                missing.append(fix)
        if missing:
            text = f"{text.rstrip('.')}. On the command line: {'; '.join(missing)}."
    return text


class _LevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"irfa-nwb: {record.levelname.lower()}: {super().format(record)}"


def _setup_logging(*, quiet: bool = False, verbose: bool = False) -> Callable[[], None]:
    """Show the library's messages: INFO (progress) on stdout, warnings on stderr.

    The library itself never prints; it logs to ``irfa_nwb``. Returns a function that removes
    the handlers again and restores the logger's level (``main`` calls it on the way out, so
    that calling ``main`` from Python leaves logging as it found it).
    """
    root = logging.getLogger("irfa_nwb")
    for handler in list(root.handlers):
        if getattr(handler, "_irfa_cli", False):
            root.removeHandler(handler)
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("%(message)s"))
    progress.addFilter(lambda record: record.levelno < logging.WARNING)
    problems = logging.StreamHandler(sys.stderr)
    problems.setLevel(logging.WARNING)
    problems.setFormatter(_LevelFormatter("%(message)s"))
    level = root.level
    for handler in (progress, problems):
        handler._irfa_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)

    def restore() -> None:
        for handler in (progress, problems):
            root.removeHandler(handler)
        root.setLevel(level)

    return restore


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Python warnings as one line on stderr (``warnings.showwarning`` while a command runs)."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    text = " ".join(str(message).split())
    print(f"irfa-nwb: warning: {kind}{text}", file=sys.stderr if file is None else file)


def _command_in(argv: Sequence[str]) -> set[str]:
    """The command named on the line (the first word not starting with ``-``), if valid."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return {word} if word in COMMANDS else set()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``irfa-nwb``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE if stop.code else EXIT_OK
    restore_logging = _setup_logging(quiet=args.quiet, verbose=args.verbose)
    shown = warnings.showwarning
    if not args.verbose:  # --verbose keeps Python's form, with the file and line
        warnings.showwarning = _show_warning
    try:
        return _run(args)
    except UsageError as err:
        args._parser.print_usage(sys.stderr)
        print(f"{args._parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("irfa-nwb: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # one clear line (and the traceback with --verbose)
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (--verbose shows the traceback)"
        print(f"irfa-nwb: error: {error_message(err, args.command)}{hint}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        warnings.showwarning = shown
        restore_logging()


if __name__ == "__main__":
    raise SystemExit(main())
