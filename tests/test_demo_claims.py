"""The README's demo table is what the demo gives (slow: the demo at its full size).

``benchmarks/readme_demo.py`` writes the table; this test reruns the demo with its defaults
and checks every verdict written there ("better" / "worse" / "n.s." of each IRFA variant
against ridge) and every mean (to 0.02: CPU thread counts change the last digits).
"""

from __future__ import annotations

import importlib.util
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
    from irfa_nwb.workflows.demo import run_demo

    module = _readme_demo()
    cells = module.read_block((ROOT / "README.md").read_text())
    result = run_demo(tmp_path / "demo", verbose=0)
    ds = result.comparison
    label_of = dict(zip(ds["metric_label"].values.tolist(), ds["metric"].values.tolist(),
                        strict=True))
    for (row, label), cell in cells.items():
        metric = label_of[label]
        number = float(cell.split()[0])
        if row in ds["model"].values:
            assert float(ds["value_mean"].sel(model=row, metric=metric)) == pytest.approx(
                number, abs=0.02), (row, label)
        else:
            verdict = int(ds["verdict"].sel(pair=row, metric=metric))
            assert cell.endswith(module.VERDICT_WORDS[verdict]), (row, label, cell)
            assert float(ds["difference"].sel(pair=row, metric=metric)) == pytest.approx(
                number, abs=0.02), (row, label)
