"""Learning curves on the simulator: where (if anywhere) IRFA overtakes the ridge baseline.

For each training-set size, IRFA and :class:`irfa_nwb.RidgeReconstruction` are compared with
:func:`irfa_nwb.compare` on one simulated session: the same held-out test stimuli for every
size (the simulator's designated test set, averaged over its repeats), nested training sets
(the first ``size`` training stimuli), several seeds (IRFA's initialisation and batch order;
ridge is deterministic), and a paired bootstrap interval of every difference. Each size's
rows are appended to a JSON-lines file as soon as it finishes, so a long run can be split
and resumed: sizes already in the file with the same configuration are skipped (``--fresh``
recomputes them). At the end it prints, per size and metric, the difference IRFA − ridge
with its interval, and per metric the size from which IRFA is significantly better.

CPU defaults (2-core machine, about 30 minutes; 32 px, narrow networks, 20 epochs, no
perceptual or adversarial term, attention learning rate 10 × lr)::

    python benchmarks/learning_curves.py

A tiny smoke run (a minute)::

    python benchmarks/learning_curves.py --sizes 100 200 --pool 200 --seeds 0 1 \\
        --epochs 2 --image-size 16 --n-test 40 --output /tmp/lc_smoke.jsonl

GPU run at the paper's scale (hours on one GPU; the perceptual loss needs the VGG19
weights in torchvision's cache)::

    python benchmarks/learning_curves.py --sizes 500 1000 2000 4000 8000 16000 --pool 16000 \\
        --image-size 64 --width 64 --channels 32 --epochs 100 --batch-size 8 \\
        --lr 7.8e-4 --attention-lr-factor 1 --perceptual-weight 0.69 \\
        --adversarial-weight 0.01 --n-test 200 --device cuda --output lc_gpu.jsonl

The opt-in small-data options as one more curve (its own configuration and rows)::

    python benchmarks/learning_curves.py --irfa-param ridge_residual=true \
        --irfa-param response_noise=0.5

Caveat: the number of epochs is fixed, so small training sets get fewer gradient steps;
pass ``--epochs`` per run (each configuration has its own rows) to explore that.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import irfa_nwb
from irfa_nwb.analysis.compare import BUILTIN_METRICS, comparison_table, verdict_text

MODELS = ("IRFA", "ridge")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[300, 600, 1200, 2400],
                   help="training-set sizes (stimuli)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-test", type=int, default=200, help="held-out stimuli")
    p.add_argument("--pool", type=int, default=2400,
                   help="training stimuli simulated; every size is a nested subset of them "
                        "(keep it fixed to split a run over several calls)")
    p.add_argument("--n-repeats", type=int, default=10, help="repeats of each test stimulus")
    p.add_argument("--sim-seed", type=int, default=0, help="random_state of the simulator")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--attention-lr-factor", type=float, default=10.0,
                   help="attention_lr = factor x lr")
    p.add_argument("--perceptual-weight", type=float, default=0.0)
    p.add_argument("--adversarial-weight", type=float, default=0.0)
    p.add_argument("--irfa-param", action="append", default=[], metavar="NAME=VALUE",
                   help="extra IRFA parameter (repeatable; VALUE read as JSON, e.g. "
                        "ridge_residual=true response_noise=0.5); part of the configuration")
    p.add_argument("--device", default="auto")
    p.add_argument("--n-bootstrap", type=int, default=2000)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--output", type=Path, default=Path("learning_curves.jsonl"),
                   help="JSON-lines file the rows are appended to")
    p.add_argument("--fresh", action="store_true",
                   help="recompute sizes already in --output for this configuration")
    p.add_argument("--show-tables", action="store_true",
                   help="print the full comparison table of every size")
    return p.parse_args(argv)


def configuration(args: argparse.Namespace) -> dict[str, Any]:
    """Everything that changes the numbers of a size (not the list of sizes, not the file)."""
    return {
        "seeds": list(args.seeds), "n_test": args.n_test, "n_repeats": args.n_repeats,
        "sim_seed": args.sim_seed, "image_size": args.image_size, "channels": args.channels,
        "width": args.width, "epochs": args.epochs, "batch_size": args.batch_size,
        "lr": args.lr, "attention_lr": args.lr * args.attention_lr_factor,
        "perceptual_weight": args.perceptual_weight,
        "adversarial_weight": args.adversarial_weight, "n_bootstrap": args.n_bootstrap,
        "confidence": args.confidence, "pool": args.pool,
        **({"irfa_params": extra_params(args.irfa_param)} if args.irfa_param else {}),
    }


def extra_params(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` strings -> parameters (VALUE parsed as JSON, else kept as text)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--irfa-param needs NAME=VALUE; got {item!r}")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def config_key(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def session(config: dict[str, Any]):
    """The simulated session: ``pool`` training stimuli plus the test set. Every size is a
    nested subset of it, so all sizes share their test stimuli, and a run split over several
    calls (same configuration, same pool) uses one simulation."""
    return irfa_nwb.simulate_recording(
        n_stimuli=config["pool"] + config["n_test"], n_test=config["n_test"],
        n_repeats=config["n_repeats"], image_size=config["image_size"],
        random_state=config["sim_seed"])


def subset(data, size: int):
    split = np.asarray(data["split"].values).astype(str)
    train = np.flatnonzero(split == "train")
    if size > len(train):
        raise SystemExit(f"size {size} exceeds the {len(train)} simulated training stimuli; "
                         "raise --pool")
    keep = np.sort(np.concatenate([train[:size], np.flatnonzero(split == "test")]))
    return data.isel(stimulus_id=keep)


def estimators(config: dict[str, Any], device: str) -> dict[str, Any]:
    irfa = irfa_nwb.IRFA(
        image_size=config["image_size"], channels=config["channels"], width=config["width"],
        max_iter=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
        attention_lr=config["attention_lr"], perceptual_weight=config["perceptual_weight"],
        adversarial_weight=config["adversarial_weight"], device=device, verbose=0,
        **config.get("irfa_params", {}))
    return {"IRFA": irfa,
            "ridge": irfa_nwb.RidgeReconstruction(image_size=config["image_size"])}


def rows_of(result, size: int, config: dict[str, Any], key: str, seconds: float,
            model: str = "IRFA") -> list[dict[str, Any]]:
    """One JSON row per metric of ``model`` - ridge in a :func:`irfa_nwb.compare` result
    (the model's values under the key ``"IRFA"``)."""
    pair = f"{model} - ridge"
    rows = []
    for metric in [str(m) for m in result["metric"].values]:
        row = result.sel(metric=metric)
        lo, hi = (float(v) for v in row["difference_ci"].sel(pair=pair).values)
        rows.append({
            "config_key": key, "size": size, "metric": metric,
            "IRFA": float(row["value_mean"].sel(model=model)),
            "ridge": float(row["value_mean"].sel(model="ridge")),
            "IRFA_per_seed": [float(v) for v in row["value"].sel(model=model).values],
            "ridge_per_seed": [float(v) for v in row["value"].sel(model="ridge").values],
            "difference": float(row["difference"].sel(pair=pair)),
            "ci_low": lo, "ci_high": hi, "verdict": int(row["verdict"].sel(pair=pair)),
            "verdict_text": verdict_text(result, pair, metric),
            "fit_seconds_IRFA": float(result["fit_seconds"].sel(model=model).sum()),
            "fit_seconds_ridge": float(result["fit_seconds"].sel(model="ridge").sum()),
            "seconds": seconds, "n_test": int(result["n_held_out"].max()),
            "config": config,
            "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)",
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
    return rows


def overtakes(sizes: list[int], verdicts: list[int], diffs: list[float]) -> str:
    """Where IRFA is significantly better from that size on, in words."""
    better = [s for s, v in zip(sizes, verdicts, strict=True) if v > 0]
    from_on = next((s for i, s in enumerate(sizes) if all(v > 0 for v in verdicts[i:])), None)
    crossing = next((s for i, s in enumerate(sizes) if all(d > 0 for d in diffs[i:])), None)
    worse = [s for s, v in zip(sizes, verdicts, strict=True) if v < 0]
    parts = []
    if from_on is not None:
        parts.append(f"IRFA significantly better from {from_on} stimuli on")
    elif better:
        parts.append(f"IRFA significantly better at {better} only")
    else:
        parts.append(f"IRFA never significantly better (up to {sizes[-1]})")
    if crossing is not None and crossing != from_on:
        parts.append(f"ahead on average from {crossing} on")
    if worse:
        parts.append(f"ridge significantly better at {worse}")
    return "; ".join(parts)


def summary(rows: list[dict[str, Any]], key: str) -> str:
    mine = [r for r in rows if r["config_key"] == key]
    if not mine:
        return "no results for this configuration yet"
    sizes = sorted({r["size"] for r in mine})
    metrics = [m for m in BUILTIN_METRICS if any(r["metric"] == m for r in mine)]
    by = {(r["size"], r["metric"]): r for r in mine}  # the last row of a size wins
    conf = mine[-1]["config"]["confidence"]
    lines = [f"IRFA - ridge on {mine[-1]['n_test']} held-out stimuli, seeds "
             f"{mine[-1]['config']['seeds']}, {100 * conf:g}% paired bootstrap intervals "
             f"(configuration {key})",
             f"{'metric':<22}{'size':>6}{'IRFA':>8}{'ridge':>8}{'diff':>8}  "
             f"{'interval':<18}{'IRFA fit s':>11}  verdict"]
    for metric in metrics:
        for size in sizes:
            r = by.get((size, metric))
            if r is None:
                continue
            interval = f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
            lines.append(
                f"{metric:<22}{size:>6}{r['IRFA']:>8.3f}{r['ridge']:>8.3f}"
                f"{r['difference']:>+8.3f}  {interval:<18}"
                f"{r['fit_seconds_IRFA']:>11.0f}  {r['verdict_text']}")
    lines.append("")
    for metric in metrics:
        have = [s for s in sizes if (s, metric) in by]
        lines.append(f"{metric:<22}" + overtakes(
            have, [by[s, metric]["verdict"] for s in have],
            [by[s, metric]["difference"] for s in have]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = configuration(args)
    key = config_key(config)
    rows = read_rows(args.output)
    if max(args.sizes) > args.pool:
        raise SystemExit(f"--sizes go up to {max(args.sizes)}: raise --pool to at least that")
    done = {r["size"] for r in rows if r["config_key"] == key}
    todo = [s for s in sorted(set(args.sizes)) if args.fresh or s not in done]
    print(f"configuration {key}: {json.dumps(config)}")
    print(f"sizes to run: {todo} (already in {args.output}: {sorted(done)})")
    if todo:
        t0 = time.perf_counter()
        data = session(config)
        print(f"simulated {data.sizes['stimulus_id']} stimuli x {data.sizes['unit']} units "
              f"in {time.perf_counter() - t0:.0f} s")
    for size in todo:
        t0 = time.perf_counter()
        result = irfa_nwb.compare(estimators(config, args.device), subset(data, size),
                                  seeds=args.seeds, n_bootstrap=args.n_bootstrap,
                                  confidence=args.confidence, random_state=0)
        seconds = time.perf_counter() - t0
        new = rows_of(result, size, config, key, seconds)
        with args.output.open("a") as f:
            for row in new:
                f.write(json.dumps(row) + "\n")
        rows.extend(new)
        print(f"size {size}: done in {seconds:.0f} s, appended to {args.output}")
        if args.show_tables:
            print(comparison_table(result))
    print()
    print(summary(rows, key))


if __name__ == "__main__":
    main()
