"""IRFA on plain NumPy arrays: responses (n, units), images (n, H, W, 3), a head label per unit.

    python examples/02_numpy_arrays.py [output_dir]

No NWB and no xarray needed: ``fit`` pairs row k of the responses with image k. A small
configuration meant for a CPU; ``IRFA_EXAMPLE_TINY=1`` makes it a smoke test.
"""

import os
import sys
from pathlib import Path

import numpy as np

from irfa_nwb import IRFA, load_model

TINY = os.environ.get("IRFA_EXAMPLE_TINY", "") not in ("", "0")
out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
n, n_units, size = (48, 24, 16) if TINY else (200, 48, 32)

# images: coarse random colour blocks; responses: a noisy linear read-out of the blocks
images = rng.random((n, 4, 4, 3)).repeat(size // 4, axis=1).repeat(size // 4, axis=2)
images = images.astype(np.float32)
weights = rng.normal(size=(4 * 4 * 3, n_units))
X = images[:, :: size // 4, :: size // 4].reshape(n, -1) @ weights
X = (X + 0.2 * rng.normal(size=X.shape)).astype(np.float32)
groups = np.repeat(["array_A", "array_B", "array_C"], n_units // 3)  # one attention head each

n_train = int(0.8 * n)
model = IRFA(
    image_size=size, width=8 if TINY else 16, channels=8 if TINY else 32,
    max_iter=1 if TINY else 30, lr=1e-3, attention_lr=1e-2,
    adversarial_weight=0, perceptual_weight=0,  # no pretrained weights needed
    unit_groups=groups, random_state=0,
)
model.fit(X[:n_train], images[:n_train])

recon = model.predict(X[n_train:])  # (n_test, size, size, 3) float32 in [0, 1]
print("reconstructions:", recon.shape,
      "score (mean pixel r):", round(model.score(X[n_train:], images[n_train:]), 3))
print("spatial IRFs:", model.spatial_irfs(X[n_train:]).shape)  # (n_test, 3 heads, size, size)
print("feature IRFs:", model.feature_irfs(X[n_train:]).shape)  # (n_test, 3 heads, channels)
print("last epoch:", model.history_[-1])

path = model.save(out / "numpy_model.safetensors", overwrite=True)  # safetensors, no pickle
again = load_model(path)
assert np.array_equal(again.predict(X[n_train:]), recon)
print("saved and reloaded", path)
