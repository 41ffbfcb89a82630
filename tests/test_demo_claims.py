"""The README's demo table is what the demo gives (slow: the demo at its full size).

``benchmarks/readme_demo.py`` writes the table; this test reruns the demo with its defaults
and checks every verdict written there ("better" / "worse" / "n.s." of each IRFA variant
against ridge) and every mean (to 0.02; n-way identification, which moves in steps of one
held-out stimulus, to 0.03). The demo runs with torch's default number of threads, as the
script runs it (the suite's conftest sets one thread): the thread count changes the order of
floating-point sums and so the training trajectory (with one thread, IRFA's n-way
identification came out 0.090 instead of 0.113).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_demo():
    spec = importlib.util.spec_from_file_location("readme_demo",
                                                  ROOT / "benchmarks" / "readme_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_has_a_generated_demo_table():
    module = _readme_demo()
    cells = module.read_block((ROOT / "README.md").read_text())
    assert cells, "README.md lost its demo table block"
    rows = {row for row, _ in cells}
    assert "ridge" in rows and any(r.endswith("- ridge") for r in rows)
    assert any(re.search(r"(better|worse|n\.s\.)$", c) for c in cells.values())


@pytest.mark.slow
def test_demo_reproduces_the_readme_table(tmp_path):
    import torch

    from irfa_nwb.workflows.demo import run_demo

    module = _readme_demo()
    cells = module.read_block((ROOT / "README.md").read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else (os.cpu_count() or 1))
    try:
        result = run_demo(tmp_path / "demo", verbose=0)
    finally:
        torch.set_num_threads(threads)
    ds = result.comparison
    label_of = dict(zip(ds["metric_label"].values.tolist(), ds["metric"].values.tolist(),
                        strict=True))
    for (row, label), cell in cells.items():
        metric = label_of[label]
        number = float(cell.split()[0])
        tolerance = 0.03 if metric == "identification" else 0.02
        if row in ds["model"].values:
            assert float(ds["value_mean"].sel(model=row, metric=metric)) == pytest.approx(
                number, abs=tolerance), (row, label)
        else:
            verdict = int(ds["verdict"].sel(pair=row, metric=metric))
            assert cell.endswith(module.VERDICT_WORDS[verdict]), (row, label, cell)
            assert float(ds["difference"].sel(pair=row, metric=metric)) == pytest.approx(
                number, abs=tolerance), (row, label)
