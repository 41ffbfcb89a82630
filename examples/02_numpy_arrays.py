"""IRFA on plain NumPy arrays: responses (n, units), images (n, H, W, 3), a group per unit.

    python examples/02_numpy_arrays.py
"""

import numpy as np

from irfa_nwb import IRFA, load_model

rng = np.random.default_rng(0)
n, n_units, size = 200, 48, 32

# images: random colour blobs; responses: a noisy linear read-out of a coarse image
images = rng.random((n, 4, 4, 3)).repeat(size // 4, axis=1).repeat(size // 4, axis=2)
weights = rng.normal(size=(4 * 4 * 3, n_units))
X = images[:, :: size // 4, :: size // 4].reshape(n, -1) @ weights
X += 0.2 * rng.normal(size=X.shape)
groups = np.repeat(["array_A", "array_B", "array_C"], n_units // 3)  # one head each

model = IRFA(
    image_size=32, width=16, epochs=30, lr=1e-3, attention_lr=1e-2, adversarial_weight=0,
    perceptual_weight=0, random_state=0, verbose=0,
)
model.fit(X[:160], images[:160].astype(np.float32), groups=groups)

recon = model.predict(X[160:])  # (40, 32, 32, 3) float in [0, 1]
print("reconstructions:", recon.shape, "score:", round(model.score(X[160:], images[160:]), 3))
print("spatial IRFs:", model.spatial_fields(X[160:]).shape)  # (40, 3 heads, 32, 32)
print("feature IRFs:", model.feature_fields(X[160:]).shape)  # (40, 3 heads, 32 channels)
print("history of the last epoch:", model.history_[-1])

model.save("numpy_model.safetensors")
again = load_model("numpy_model.safetensors")
assert np.array_equal(again.predict(X[160:]), recon)
