"""Run the demo (``irfa-nwb demo``'s defaults) and write its comparison into README.md.

The README's demo table sits between the markers ``<!-- demo-table:start -->`` and
``<!-- demo-table:end -->``; this script replaces what is between them with the numbers of
this run, the machine, the seeds and the time it took, so the README never shows figures that
no script produced. ``tests/test_demo_claims.py`` (slow) reruns the demo and checks the
verdicts written there::

    python benchmarks/readme_demo.py            # ~10 minutes on a 2-core CPU
    python benchmarks/readme_demo.py --dry-run  # print the table, leave README.md alone
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

START, END = "<!-- demo-table:start -->", "<!-- demo-table:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"
#: verdict words in the table (first model of the pair is the IRFA variant)
VERDICT_WORDS = {1: "better", -1: "worse", 0: "n.s."}


def markdown_table(result, seconds: float, machine: str) -> str:
    """The README block for a :class:`irfa_nwb.workflows.demo.DemoResult`."""
    ds = result.comparison
    metrics = [str(m) for m in ds["metric"].values]
    labels = [str(v) for v in ds["metric_label"].values]
    lines = ["| held-out stimuli: mean over seeds [95 % CI] | " + " | ".join(labels) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    for model in [str(m) for m in ds["model"].values]:
        cells = []
        for metric in metrics:
            v = float(ds["value_mean"].sel(model=model, metric=metric))
            lo, hi = (float(x) for x in ds["value_ci"].sel(model=model, metric=metric).values)
            cells.append(f"{v:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for pair, second in zip(ds["pair"].values, ds["pair_second"].values, strict=True):
        if str(second) != "ridge":
            continue
        cells = []
        for metric in metrics:
            row = ds.sel(pair=pair, metric=metric)
            lo, hi = (float(x) for x in row["difference_ci"].values)
            word = VERDICT_WORDS[int(row["verdict"])]
            cells.append(f"{float(row['difference']):+.3f} [{lo:+.3f}, {hi:+.3f}] {word}")
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    seeds = " ".join(str(int(s)) for s in ds["seed"].values)
    lines += [
        "",
        f"*{int(ds['n_held_out'].max())} held-out stimuli, seeds {seeds} of every model, "
        f"{int(ds.attrs['n_bootstrap'])} paired bootstrap resamples; \"better\" / \"worse\": "
        "the interval of the difference to ridge excludes 0, \"n.s.\": it does not. Produced "
        f"by `python benchmarks/readme_demo.py` on {machine}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}, in {seconds / 60:.1f} minutes; spatial IRF "
        f"peaks {float(result.rf_distances['distance'].median()):.3f} image widths from "
        "their arrays' true RF centres (median; chance "
        f"{result.rf_distances.attrs['chance_distance']:.3f}).*",
    ]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), flags=re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return pattern.sub(lambda _m: f"{START}\n{block}\n{END}", text)


def read_block(text: str) -> dict[tuple[str, str], str]:
    """(row, metric label) -> cell text of the README's demo table (for the claims test)."""
    pattern = re.compile(re.escape(START) + r"(.*?)" + re.escape(END), flags=re.S)
    match = pattern.search(text)
    if match is None:
        return {}
    rows = [line for line in match.group(1).splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    cells = {}
    for line in rows[1:]:
        parts = [c.strip() for c in line.strip("|").split("|")]
        for label, cell in zip(header[1:], parts[1:], strict=True):
            cells[parts[0], label] = cell
    return cells


def main(argv: list[str] | None = None) -> None:
    from irfa_nwb.workflows.demo import run_demo

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="print the block only")
    p.add_argument("--out", type=Path, default=None, help="demo output folder (default: temp)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    machine = f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, no GPU)"
    try:
        import torch

        if torch.cuda.is_available():
            machine = f"{platform.node()} ({torch.cuda.get_device_name()})"
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_demo(args.out or Path(tmp) / "demo", verbose=0)
        seconds = time.perf_counter() - t0
        print(result.summary())
        block = markdown_table(result, seconds, machine)
    print()
    print(block)
    if not args.dry_run:
        README.write_text(replace_block(README.read_text(), block))
        print(f"\nwrote the table into {README}")


if __name__ == "__main__":
    main()
