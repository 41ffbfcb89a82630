"""Quick start: a simulated NWB session -> IRFA -> evaluation -> results NWB -> figures.

    python examples/01_quickstart_simulated.py [output_dir]

A small configuration meant for a CPU. ``IRFA_EXAMPLE_TINY=1`` shrinks the data and the
model to a smoke test (the numbers it prints then mean nothing).
"""

import os
import sys
from pathlib import Path

import irfa_nwb
from irfa_nwb.workflows.report import write_report

TINY = os.environ.get("IRFA_EXAMPLE_TINY", "") not in ("", "0")
out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart_output")
out.mkdir(parents=True, exist_ok=True)

# 1. a best-practice NWB file with known receptive fields (Images + IndexSeries + units)
size = 16 if TINY else 32
nwb_path = irfa_nwb.write_simulated_recording(
    out / "session.nwb",
    n_stimuli=60 if TINY else 400, n_test=10 if TINY else 40, n_repeats=3 if TINY else 5,
    image_size=size, overwrite=True,
)

# 2. load it: responses (stimulus_id x repeat x unit) and images (stimulus_id x y x x x channel)
ds = irfa_nwb.load_dataset(nwb_path)
print(ds)
train, test = irfa_nwb.split_stimuli(ds)  # the file's designated test split

# 3. fit: one attention head per electrode group (the electrode_group coordinate); images are
# paired with responses by stimulus_id and repeats are averaged. A small CPU configuration:
# the published one is IRFA() (64 px, width 64, 100 epochs, VGG19 perceptual loss).
model = irfa_nwb.IRFA(
    image_size=size, width=8 if TINY else 32, channels=8 if TINY else 32,
    max_iter=1 if TINY else 15, batch_size=16, lr=5e-4, attention_lr=5e-3,
    adversarial_weight=0,
    perceptual_weight=0,  # > 0 needs the pretrained VGG19 weights
    random_state=0, verbose=0 if TINY else 1,
).fit(train.responses, train.images)
print("held-out pixel correlation:", round(model.score(test.responses, test.images), 3))
model.save(out / "model.safetensors", overwrite=True)

# 4. evaluate on the held-out stimuli (reconstructions, metrics, IRF analyses), write NWB
results = irfa_nwb.evaluate(model, test)
print(results[["pixel_r", "ssim", "identification_rank"]].to_dataframe().describe())
path = irfa_nwb.write_results(out / "results.nwb", results, overwrite=True)
print("wrote", path)

# 5. figures and a text summary from the results file
for figure in write_report(path, out / "figures", layer_correlations=False):
    print("wrote", figure)
