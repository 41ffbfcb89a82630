"""Small-data options of IRFA against the ridge baseline, on the simulator, over seeds.

Fits the ridge baseline and IRFA variants (the learning-curve configuration of
``benchmarks/learning_curves.py`` with the opt-in small-data parameters switched on one at a
time and together) on the same simulated session, training set and held-out stimuli, with
:func:`irfa_nwb.compare`: every metric's paired bootstrap interval of the difference to ridge.
Rows (one per variant and metric) are appended to a JSON-lines file as each run finishes,
so variants can be split over several processes (``--variants``) and the table printed from
the file afterwards (``--summary-only``).

The regime the issue asks about (about 1,000 training stimuli; 2 CPU cores: ~25 minutes)::

    python benchmarks/small_data.py --size 1000 --output small_data.jsonl

The larger regime, to check an option does not hurt there::

    python benchmarks/small_data.py --size 2400 --variants baseline small_data \\
        --output small_data.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import irfa_nwb

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from learning_curves import config_key, read_rows, rows_of, session, subset  # noqa: E402

from irfa_nwb.analysis.compare import (  # noqa: E402
    BUILTIN_METRICS,
    comparison_table,
)

#: name -> IRFA parameters on top of the base configuration
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "ridge_residual": {"ridge_residual": True},
    "response_noise": {"response_noise": 0.5},
    "small_network": {"width": 16},
    "early_stopping": {"early_stopping": True, "n_iter_no_change": 5},
    "small_data": {"ridge_residual": True, "response_noise": 0.5},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=1000, help="training stimuli")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--pool", type=int, default=2400)
    p.add_argument("--n-repeats", type=int, default=10)
    p.add_argument("--sim-seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--attention-lr-factor", type=float, default=10.0)
    p.add_argument("--device", default="auto")
    p.add_argument("--n-bootstrap", type=int, default=2000)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--output", type=Path, default=Path("small_data.jsonl"))
    p.add_argument("--summary-only", action="store_true",
                   help="print the table of the rows already in --output")
    return p.parse_args(argv)


def base_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "size": args.size, "seeds": list(args.seeds), "n_test": args.n_test,
        "n_repeats": args.n_repeats, "sim_seed": args.sim_seed, "pool": args.pool,
        "image_size": args.image_size, "channels": args.channels, "width": args.width,
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "attention_lr": args.lr * args.attention_lr_factor, "perceptual_weight": 0.0,
        "adversarial_weight": 0.0, "n_bootstrap": args.n_bootstrap,
        "confidence": args.confidence,
    }


def irfa_for(config: dict[str, Any], variant: str, device: str) -> irfa_nwb.IRFA:
    params = dict(
        image_size=config["image_size"], channels=config["channels"], width=config["width"],
        max_iter=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
        attention_lr=config["attention_lr"], perceptual_weight=0.0, adversarial_weight=0.0,
        device=device, verbose=0)
    params.update(VARIANTS[variant])
    return irfa_nwb.IRFA(**params)


def summary(rows: list[dict[str, Any]], key: str) -> str:
    mine = [r for r in rows if r["config_key"] == key]
    if not mine:
        return "no rows for this configuration yet"
    conf = mine[-1]["config"]
    by = {(r["variant"], r["metric"]): r for r in mine}
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in mine)]
    lines = [f"IRFA variants - ridge: {conf['size']} training stimuli, {mine[-1]['n_test']} "
             f"held-out, seeds {conf['seeds']}, {100 * conf['confidence']:g}% paired bootstrap "
             f"intervals (configuration {key}; {mine[-1]['machine']})",
             f"{'variant':<16}{'metric':<22}{'IRFA':>8}{'ridge':>8}{'diff':>8}  "
             f"{'interval':<18}{'fit s':>7}  verdict"]
    for variant in variants:
        for metric in BUILTIN_METRICS:
            r = by.get((variant, metric))
            if r is None:
                continue
            interval = f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
            lines.append(f"{variant:<16}{metric:<22}{r['IRFA']:>8.3f}{r['ridge']:>8.3f}"
                         f"{r['difference']:>+8.3f}  {interval:<18}"
                         f"{r['fit_seconds_IRFA'] / len(conf['seeds']):>7.0f}  "
                         f"{r['verdict_text']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = base_config(args)
    key = config_key(config)
    if not args.summary_only:
        data = subset(session(config), args.size)
        print(f"configuration {key}: {json.dumps(config)}")
        for variant in args.variants:
            t0 = time.perf_counter()
            models = {variant: irfa_for(config, variant, args.device),
                      "ridge": irfa_nwb.RidgeReconstruction(image_size=config["image_size"])}
            result = irfa_nwb.compare(models, data, seeds=args.seeds,
                                      n_bootstrap=args.n_bootstrap,
                                      confidence=args.confidence, random_state=0)
            seconds = time.perf_counter() - t0
            rows = rows_of(result, args.size, config, key, seconds, model=variant)
            with args.output.open("a") as f:
                for row in rows:
                    f.write(json.dumps({**row, "variant": variant,
                                        "params": VARIANTS[variant]}) + "\n")
            print(f"{variant}: {seconds:.0f} s")
            print(comparison_table(result))
    print()
    print(summary(read_rows(args.output), key))


if __name__ == "__main__":
    main()
