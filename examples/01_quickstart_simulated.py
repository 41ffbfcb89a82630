"""Quick start: a simulated NWB session → IRFA → results NWB → figures (a few minutes on CPU).

    python examples/01_quickstart_simulated.py [output_dir]
"""

import sys
from pathlib import Path

import irfa_nwb
from irfa_nwb.analysis.figures import write_report

out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart_output")
out.mkdir(exist_ok=True)

# 1. a best-practice NWB file with known receptive fields (Images + IndexSeries + units)
nwb_path = irfa_nwb.simulate_nwb(
    out / "session.nwb", n_stimuli=400, n_test=40, n_repeats=5, image_size=32, overwrite=True
)

# 2. load it: responses (presentation x unit) + images, aligned by stimulus_id
ds = irfa_nwb.load_dataset(nwb_path)
print(ds)
train, test = irfa_nwb.train_test_split(ds)  # the file's test split; repeats stay together
X_train, y_train = irfa_nwb.to_training_pair(train)  # repeats averaged: stimulus x unit
X_test, y_test = irfa_nwb.to_training_pair(test)

# 3. fit: one attention head per electrode group (from the electrode_group coord)
# (a small, CPU-sized configuration; the published one is image_size=64, width=64, epochs=100)
model = irfa_nwb.IRFA(
    image_size=32, width=32, epochs=15, batch_size=16, lr=5e-4, attention_lr=5e-3,
    adversarial_weight=0,
    perceptual_weight=0,  # set > 0 when pretrained VGG19 weights are available
    random_state=0,
).fit(X_train, y_train)
print("held-out pixel correlation:", round(model.score(X_test, y_test), 3))

# 4. results into NWB, then figures
results = irfa_nwb.write_results(out / "results.nwb", model, test, overwrite=True)
for path in write_report(results, out / "figures"):
    print("wrote", path)
